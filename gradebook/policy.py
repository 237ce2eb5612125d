"""The course policy as pure functions: late days, slack days, penalties, the marking scheme.

Nothing here touches the database or the clock: every function takes the records and the
moment ("as of") it grades at, so the same inputs always give the same numbers, and every number
comes with the lines that derive it (``autograder gradebook explain`` prints them).

The rules, from ``course.toml`` (see :mod:`autograder.config`):

* **Late days.** A submission received at or before the (extended) due time plus the grace
  period is on time. Otherwise "each started 24 hours after the due time is one late day": with
  ``late_day_clock = "elapsed"`` (the default) that is exactly it, in elapsed time, so a
  submission 3 days and 31 minutes late is 4 late days whatever daylight-saving change lies
  between (the grace period only forgives; it does not move the due time). A course may choose
  ``"wall"`` instead: late day *k* ends at the due time's wall-clock time *k* days later in the
  course time zone (a day across a daylight-saving change is 23 or 25 hours). Explanations show
  the seconds whenever they decide a day.
* **Acceptance.** More than ``max_late_days`` late days: not accepted. Kinds in
  ``no_slack_kinds`` (exams, quizzes) close hard: any late day means not accepted.
* **Which record counts.** A manual score (``scores import``) replaces the autograded
  submissions; otherwise ``score_policy`` picks among the accepted ones: ``last``, ``best`` (the
  highest raw score, the earlier on a tie) or ``chosen`` (the one the student chose; the last if
  none was chosen).
* **Slack days.** The budget covers a late submission's late days whole, or not at all (the
  penalty is per submission, so covering part of one would waste days). ``chronological`` goes
  through late submissions in due-date order and covers each one the days left can cover;
  ``best`` covers the set that maximises the final grade (ties go to the chronological set).
  Both are always computed, so a student can see what the other would give.
* **Penalty.** A late submission the slack days do not cover keeps ``1 - penalty`` of its score.
* **Marking scheme.** An assessment lands in its configured category, else the category named
  like it (``midterm``), else the category that lists its kind. A category's percentage is the
  mean of its assessments' percentages (or points over max points with ``aggregate =
  "points"``); the final percentage weighs the categories that have something counted, and the
  letter is the highest whose cutoff it reaches. An assessment counts once its (extended) due
  time has passed or the student has a record for it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from autograder.config import Category, CourseConfig

DAY = dt.timedelta(days=1)
UTC = dt.timezone.utc
_EPS = 1e-9


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class AssessmentSpec:
    """One assessment as the policy sees it (an assignment.toml or a course.toml assessment)."""

    name: str
    kind: str = "homework"
    category: str = ""
    due: dt.datetime | None = None  # aware
    max_points: float | None = None
    title: str = ""


@dataclass(frozen=True)
class Attempt:
    """One gradable record of a student for an assessment: a graded submission or a manual score."""

    label: str
    submitted_at: dt.datetime | None  # aware; None only for untimed manual scores
    score: float
    max_score: float
    manual: bool = False
    chosen: bool = False
    # Recorded but not graded yet: listed in the explanation, never counted.
    pending: bool = False
    # Lines shown under it in the explanation (staff overrides, a result's own maximum).
    notes: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        return self.score / self.max_score if self.max_score > 0 else 0.0


@dataclass(frozen=True)
class StudentRecords:
    student_id: str
    name: str = ""
    status: str = "active"
    # assessment name -> its attempts
    attempts: dict[str, tuple[Attempt, ...]] = field(default_factory=dict)
    # assessment name -> extended due time (aware)
    extensions: dict[str, dt.datetime] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Time


def as_course_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A naive time is wall-clock time in the course zone; an aware one is converted to it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def fmt_time(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    """A due time or deadline, to the minute, in the course time zone."""
    if moment is None:
        return "(no time)"
    return as_course_time(moment, zone).strftime("%Y-%m-%d %H:%M %Z")


def fmt_receipt(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    """A receipt time, to the second (a second can decide a late day)."""
    if moment is None:
        return "(no time)"
    local = as_course_time(moment, zone)
    frac = f".{local.microsecond:06d}".rstrip("0") if local.microsecond else ""
    return local.strftime("%Y-%m-%d %H:%M:%S") + frac + local.strftime(" %Z")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def fmt_span(span: dt.timedelta) -> str:
    """A duration exactly, without rounding: "8 days 0 h 0 min 1 s", "3 days 0 h 31 min",
    "2 h 5 min", "15 min". Once a larger unit is shown, the smaller ones down to minutes are
    shown too, and seconds (with their fraction) whenever they are not zero, so the second that
    starts another late day is never hidden."""
    sign = "-" if span < dt.timedelta(0) else ""
    span = abs(span)
    whole = span.days * 86400 + span.seconds
    day_count, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if day_count:
        parts.append(days(day_count))
    if day_count or hours:
        parts.append(f"{hours} h")
    if day_count or hours or minutes:
        parts.append(f"{minutes} min")
    if seconds or span.microseconds or not parts:
        frac = f".{span.microseconds:06d}".rstrip("0") if span.microseconds else ""
        parts.append(f"{seconds}{frac} s")
    return sign + " ".join(parts)


def late_day_end(due: dt.datetime, k: int, zone: ZoneInfo, clock: str = "elapsed") -> dt.datetime:
    """When late day ``k`` (1, 2, ...) after ``due`` ends, as an aware UTC time."""
    if clock == "elapsed":
        return due.astimezone(UTC) + k * DAY
    wall = as_course_time(due, zone).replace(tzinfo=None) + k * DAY
    # A wall time skipped or repeated by a DST change: take the later instant (the student's side).
    return max(wall.replace(tzinfo=zone, fold=0).astimezone(UTC),
               wall.replace(tzinfo=zone, fold=1).astimezone(UTC))


@dataclass(frozen=True)
class Lateness:
    days: int
    late_by: dt.timedelta
    line: str


def late_days(submitted_at: dt.datetime, due: dt.datetime, *, zone: ZoneInfo,
              grace: dt.timedelta = dt.timedelta(0), clock: str = "elapsed") -> Lateness:
    """The late days of a submission received at ``submitted_at`` for an assessment due at
    ``due``: each started 24 hours after the due time is one (``clock="elapsed"``)."""
    late_by = submitted_at.astimezone(UTC) - due.astimezone(UTC)
    when = f"received {fmt_receipt(submitted_at, zone)}"
    if late_by <= dt.timedelta(0):
        return Lateness(0, late_by, f"{when}: {fmt_span(-late_by)} before the due time -> 0 late days")
    if late_by <= grace:
        return Lateness(0, late_by, f"{when}: {fmt_span(late_by)} after the due time, inside the "
                                   f"{fmt_span(grace)} grace period -> 0 late days")
    k = max(1, math.ceil(late_by / DAY) - 1)
    while submitted_at.astimezone(UTC) > late_day_end(due, k, zone, clock):
        k += 1
    clock_word = "on the course clock" if clock == "wall" else "of 24 h each"
    grace_note = f", past the {fmt_span(grace)} grace period" if grace else ""
    line = (f"{when}: {fmt_span(late_by)} after the due time{grace_note} -> {k} late "
            f"day{'s' if k != 1 else ''} (started days {clock_word}; day {k} ends "
            f"{fmt_time(late_day_end(due, k, zone, clock), zone)})")
    return Lateness(k, late_by, line)


# ---------------------------------------------------------------------------------------------
# One assessment, before slack days


@dataclass(frozen=True)
class AssessmentEntry:
    """What counts for one assessment of one student, before slack days and penalties."""

    spec: AssessmentSpec
    category: str  # resolved; "" when it lands in no category
    due: dt.datetime | None  # effective (extended) due time
    counted: bool  # part of the grades yet
    attempt: Attempt | None  # the record that counts
    late_days: int
    takes_slack: bool
    status: str  # on_time | late | missing | not_accepted | not_due
    max_points: float
    lines: tuple[str, ...]

    @property
    def fraction(self) -> float:
        return self.attempt.fraction if self.attempt else 0.0

    @property
    def raw_points(self) -> float:
        return self.fraction * self.max_points


def resolve_category(spec: AssessmentSpec, categories: dict[str, Category]) -> tuple[str, str]:
    """(category, why) for an assessment; category "" when none fits."""
    if spec.category:
        if spec.category in categories:
            return spec.category, f"category {spec.category} (from its config)"
        return "", (f"its category {spec.category!r} is not in course.toml [categories]; "
                    f"it counts in no category until you add [categories.{spec.category}]")
    if spec.name in categories:
        return spec.name, f"category {spec.name} (named like the assessment)"
    for name, cat in categories.items():
        if spec.kind in cat.kinds:
            return name, f"category {name} (kind {spec.kind})"
    return "", (f"no category: set category = \"...\" in its config, or list kind "
                f"{spec.kind!r} in a course.toml [categories.<name>] kinds")


def _pick(accepted: list[tuple[Attempt, int]], score_policy: str) -> tuple[tuple[Attempt, int], str]:
    def time_key(item: tuple[Attempt, int]) -> dt.datetime:
        return item[0].submitted_at or dt.datetime.min.replace(tzinfo=UTC)

    if score_policy == "best":
        best = max(accepted, key=lambda it: (it[0].fraction, -time_key(it).timestamp()))
        return best, "the best accepted score (score policy: best)"
    if score_policy == "chosen":
        chosen = [it for it in accepted if it[0].chosen]
        if chosen:
            return chosen[-1], "the submission the student chose (score policy: chosen)"
        return max(accepted, key=time_key), "the last accepted one: no submission was chosen"
    return max(accepted, key=time_key), "the last accepted one (score policy: last)"


def evaluate_assessment(spec: AssessmentSpec, attempts: Sequence[Attempt],
                        extension: dt.datetime | None, course: CourseConfig,
                        as_of: dt.datetime) -> AssessmentEntry:
    """Which record counts for one assessment, its late days, and whether it takes slack days."""
    zone, slack = course.zone, course.slack
    grace = dt.timedelta(minutes=slack.grace_minutes)
    category, why_category = resolve_category(spec, course.categories)
    closes_hard = spec.kind in slack.no_slack_kinds
    due = extension or spec.due
    max_points = spec.max_points or next((a.max_score for a in attempts if a.max_score > 0), 0.0)

    head = f"{spec.name} ({spec.kind}; {why_category}; out of {max_points:g} points)"
    lines = [head]
    if spec.due is None:
        lines.append("  no due time: every record is on time")
    elif extension is not None:
        lines.append(f"  due {fmt_time(spec.due, zone)}, extended to {fmt_time(extension, zone)}")
    else:
        lines.append(f"  due {fmt_time(spec.due, zone)}")
    if closes_hard and due is not None:
        lines.append(f"  {_article(spec.kind)} {spec.kind} takes no slack days and closes at the due time"
                     + (f" plus the {fmt_span(grace)} grace period" if grace else ""))

    for a in attempts:
        if a.pending:
            lines.append(f"  {a.label} received {fmt_receipt(a.submitted_at, zone)}: not "
                         f"graded yet, not counted")
    attempts = [a for a in attempts if not a.pending]
    manual = [a for a in attempts if a.manual]
    if manual:
        candidates = manual[-1:]
        if len(attempts) > 1:
            lines.append("  a manual score is recorded: it replaces the autograded submissions")
    else:
        candidates = sorted(attempts, key=lambda a: a.submitted_at or dt.datetime.min.replace(tzinfo=UTC))

    accepted: list[tuple[Attempt, int]] = []
    for a in candidates:
        score = f"{a.score:g} / {a.max_score:g}"
        if due is None or a.submitted_at is None:
            reason = "no due time" if due is None else "untimed record"
            lines.append(f"  {a.label} ({score}): {reason} -> 0 late days")
            lines.extend(f"    {note}" for note in a.notes)
            accepted.append((a, 0))
            continue
        lateness = late_days(a.submitted_at, due, zone=zone, grace=grace, clock=slack.late_day_clock)
        lines.append(f"  {a.label} ({score}): {lateness.line}")
        lines.extend(f"    {note}" for note in a.notes)
        if closes_hard and lateness.days > 0:
            lines.append(f"    not accepted: {_article(spec.kind)} {spec.kind} closes at the due time")
        elif lateness.days > slack.max_late_days:
            lines.append(f"    not accepted: {days(lateness.days)} late is more than the "
                         f"{slack.max_late_days} allowed")
        else:
            accepted.append((a, lateness.days))

    def entry(**kw) -> AssessmentEntry:
        return AssessmentEntry(spec=spec, category=category, due=due, max_points=max_points,
                               takes_slack=not closes_hard, lines=tuple(lines), **kw)

    if not accepted:
        if candidates:
            lines.append(f"  counts: 0 / {max_points:g} (no record was accepted)")
            return entry(counted=True, attempt=None, late_days=0, status="not_accepted")
        if due is not None and as_of.astimezone(UTC) <= due.astimezone(UTC) + grace:
            lines.append(f"  not due yet on {fmt_time(as_of, zone)}: not counted")
            return entry(counted=False, attempt=None, late_days=0, status="not_due")
        lines.append(f"  counts: 0 / {max_points:g} (nothing submitted)")
        return entry(counted=True, attempt=None, late_days=0, status="missing")

    (attempt, late), why = _pick(accepted, course.grading.score_policy)
    lines.append(f"  counts: {attempt.label}, {why}: {attempt.fraction * 100:.2f}% "
                 f"= {attempt.fraction * max_points:g} / {max_points:g}, {days(late)} late")
    return entry(counted=True, attempt=attempt, late_days=late,
                 status="late" if late else "on_time")


# ---------------------------------------------------------------------------------------------
# Slack days


@dataclass(frozen=True)
class Allocation:
    method: str  # chronological | best
    covered: frozenset[str]
    used: int
    left: int
    lines: tuple[str, ...]


def _late_items(entries: Sequence[AssessmentEntry]) -> list[AssessmentEntry]:
    late = [e for e in entries if e.counted and e.late_days > 0 and e.takes_slack]
    far = dt.datetime.max.replace(tzinfo=UTC)
    return sorted(late, key=lambda e: (e.due or far, e.spec.name))


def allocate_chronological(entries: Sequence[AssessmentEntry], budget: int) -> Allocation:
    """Cover late submissions in due-date order while the days left cover them whole."""
    left = budget
    covered: set[str] = set()
    lines = [f"slack days, chronological (budget {budget}):"]
    for e in _late_items(entries):
        if e.late_days <= left:
            left -= e.late_days
            covered.add(e.spec.name)
            lines.append(f"  {e.spec.name}: {days(e.late_days)} late, {left + e.late_days} "
                         f"left -> covered, {left} left")
        else:
            lines.append(f"  {e.spec.name}: {days(e.late_days)} late, only {left} left -> not "
                         f"covered (penalised); the {days(left)} stay for later")
    if len(lines) == 1:
        lines.append("  no late submission")
    return Allocation("chronological", frozenset(covered), budget - left, left, tuple(lines))


def allocate_best(entries: Sequence[AssessmentEntry], budget: int,
                  value: dict[str, float]) -> Allocation:
    """Cover the late submissions whose penalties would cost the most final-grade points, within
    the budget (0/1 knapsack over days). ``value[name]`` is what covering it is worth."""
    items = _late_items(entries)
    # days used -> (value saved, covered names); a dynamic programme over the budget.
    table: dict[int, tuple[float, frozenset[str]]] = {0: (0.0, frozenset())}
    for e in items:
        for used, (saved, cov) in sorted(table.items(), reverse=True):
            u = used + e.late_days
            if u > budget:
                continue
            cand = (saved + value.get(e.spec.name, 0.0), cov | {e.spec.name})
            if u not in table or cand[0] > table[u][0] + _EPS:
                table[u] = cand
    best_used, (best_saved, best_cov) = max(table.items(), key=lambda kv: (kv[1][0], -kv[0]))
    chrono = allocate_chronological(entries, budget)
    chrono_saved = sum(value.get(n, 0.0) for n in chrono.covered)
    lines = [f"slack days, best for the student (budget {budget}):"]
    if best_saved <= chrono_saved + _EPS:
        lines.append("  the chronological allocation is already the best")
        return Allocation("best", chrono.covered, chrono.used, chrono.left,
                          tuple(lines + list(chrono.lines[1:])))
    for e in items:
        verdict = "covered" if e.spec.name in best_cov else "not covered (penalised)"
        lines.append(f"  {e.spec.name}: {days(e.late_days)} late, worth "
                     f"{value.get(e.spec.name, 0.0):.3f} final-grade points -> {verdict}")
    lines.append(f"  {best_used} days used, {budget - best_used} left")
    return Allocation("best", best_cov, best_used, budget - best_used, tuple(lines))


# ---------------------------------------------------------------------------------------------
# The marking scheme


@dataclass(frozen=True)
class AssessmentGrade:
    name: str
    category: str
    status: str
    counted: bool
    max_points: float
    raw_points: float
    late_days: int
    slack_days: int  # spent on it
    penalty: float  # fraction taken off
    points: float  # after the penalty

    @property
    def percent(self) -> float:
        return 100 * self.points / self.max_points if self.max_points > 0 else 0.0


@dataclass(frozen=True)
class StudentGrade:
    student_id: str
    name: str
    status: str
    assessments: tuple[AssessmentGrade, ...]
    allocation: Allocation
    alternative: Allocation
    alternative_final: float | None
    categories: dict[str, float | None]
    final: float | None
    letter: str
    lines: tuple[str, ...]

    @property
    def slack_used(self) -> int:
        return self.allocation.used

    @property
    def slack_left(self) -> int:
        return self.allocation.left

    def assessment(self, name: str) -> AssessmentGrade:
        return next(a for a in self.assessments if a.name == name)


def letter_for(percent: float | None, scale: dict[str, float]) -> str:
    """The highest letter whose cutoff ``percent`` reaches ("" when there is no grade)."""
    if percent is None:
        return ""
    for letter, cutoff in sorted(scale.items(), key=lambda kv: -kv[1]):
        if percent + _EPS >= cutoff:
            return letter
    return ""


def final_shares(entries: Sequence[AssessmentEntry], categories: dict[str, Category]) -> dict[str, float]:
    """Final-grade percentage points each counted assessment is worth at full score."""
    counted = [e for e in entries if e.counted and e.category and e.max_points > 0]
    active = {e.category for e in counted}
    total_weight = sum(categories[c].weight for c in active)
    shares: dict[str, float] = {}
    if total_weight <= 0:
        return {e.spec.name: 0.0 for e in counted}
    for cat in active:
        members = [e for e in counted if e.category == cat]
        cat_share = 100 * categories[cat].weight / total_weight
        if categories[cat].aggregate == "points":
            total_max = sum(e.max_points for e in members)
            for e in members:
                shares[e.spec.name] = cat_share * e.max_points / total_max
        else:
            for e in members:
                shares[e.spec.name] = cat_share / len(members)
    return shares


def _apply(entries: Sequence[AssessmentEntry], covered: frozenset[str],
           penalty: float) -> list[AssessmentGrade]:
    grades = []
    for e in entries:
        late_uncovered = e.late_days > 0 and (not e.takes_slack or e.spec.name not in covered)
        p = penalty if late_uncovered else 0.0
        slack = e.late_days if e.spec.name in covered else 0
        grades.append(AssessmentGrade(
            name=e.spec.name, category=e.category, status=e.status, counted=e.counted,
            max_points=e.max_points, raw_points=e.raw_points, late_days=e.late_days,
            slack_days=slack, penalty=p, points=e.raw_points * (1 - p)))
    return grades


def _combine(grades: Sequence[AssessmentGrade], categories: dict[str, Category],
             scale: dict[str, float]) -> tuple[dict[str, float | None], float | None, str, list[str]]:
    lines = ["categories:"]
    percents: dict[str, float | None] = {}
    for cat_name, cat in categories.items():
        members = [g for g in grades if g.counted and g.category == cat_name and g.max_points > 0]
        if not members:
            percents[cat_name] = None
            lines.append(f"  {cat_name} (weight {cat.weight:g}): nothing counted yet")
            continue
        if cat.aggregate == "points":
            pct = 100 * sum(g.points for g in members) / sum(g.max_points for g in members)
            how = " + ".join(f"{g.points:g}" for g in members) + " over " + \
                " + ".join(f"{g.max_points:g}" for g in members)
        else:
            pct = sum(g.percent for g in members) / len(members)
            how = "mean of " + ", ".join(f"{g.name} {g.percent:.2f}%" for g in members)
        percents[cat_name] = pct
        lines.append(f"  {cat_name} (weight {cat.weight:g}): {how} = {pct:.2f}%")
    active = [(categories[c], p) for c, p in percents.items() if p is not None]
    weight = sum(c.weight for c, _ in active)
    if not active or weight <= 0:
        lines.append("final: no graded category yet")
        return percents, None, "", lines
    final = sum(c.weight * p for c, p in active) / weight
    terms = " + ".join(f"{c.weight:g} x {p:.2f}" for c, p in active)
    letter = letter_for(final, scale)
    skipped = [c for c, p in percents.items() if p is None]
    lines.append(f"final: ({terms}) / {weight:g} = {final:.2f}% -> {letter}")
    if skipped:
        lines.append(f"  (left out until something in them counts: {', '.join(skipped)})")
    return percents, final, letter, lines


def grade_student(student: StudentRecords, specs: Sequence[AssessmentSpec], course: CourseConfig,
                  as_of: dt.datetime, allocation: str | None = None) -> StudentGrade:
    """Every number shown for one student, with the lines that derive it."""
    method = allocation or course.slack.allocation
    slack = course.slack
    zone = course.zone
    lines = [f"student {student.student_id}" + (f" ({student.name})" if student.name else "")
             + (f" [{student.status}]" if student.status != "active" else ""),
             f"as of {fmt_time(as_of, zone)}; course time zone {course.timezone}",
             f"policy: {slack.days} slack days; {slack.penalty_per_late_submission * 100:g}% off "
             f"each late submission they do not cover; grace {slack.grace_minutes:g} min; more "
             f"than {slack.max_late_days} late days not accepted; "
             f"{', '.join(slack.no_slack_kinds) or 'no kind'} close at the due time; score "
             f"policy {course.grading.score_policy}", ""]
    entries = [evaluate_assessment(spec, student.attempts.get(spec.name, ()),
                                   student.extensions.get(spec.name), course, as_of)
               for spec in specs]
    for e in entries:
        lines.extend(e.lines)
    shares = final_shares(entries, course.categories)
    value = {e.spec.name: slack.penalty_per_late_submission * e.fraction * shares.get(e.spec.name, 0.0)
             for e in entries}
    chrono = allocate_chronological(entries, slack.days)
    best = allocate_best(entries, slack.days, value)
    used, other = (best, chrono) if method == "best" else (chrono, best)

    lines.append("")
    lines.extend(used.lines)
    lines.append(f"  -> {used.used} slack days used, {used.left} left "
                 f"({'course.toml [slack] allocation' if allocation is None else 'as asked'})")
    grades = _apply(entries, used.covered, slack.penalty_per_late_submission)
    penalised = [g for g in grades if g.penalty > 0]
    lines.append("penalties:")
    for g in penalised:
        lines.append(f"  {g.name}: {g.raw_points:g} x (1 - {g.penalty:g}) = {g.points:g} / {g.max_points:g}")
    if not penalised:
        lines.append("  none")
    percents, final, letter, combine_lines = _combine(grades, course.categories, course.letters)
    lines.extend(combine_lines)

    other_grades = _apply(entries, other.covered, slack.penalty_per_late_submission)
    _, other_final, _, _ = _combine(other_grades, course.categories, course.letters)
    lines.append("")
    lines.extend(other.lines)
    if other_final is None or final is None:
        lines.append(f"  -> the {other.method} allocation: {other.used} used, {other.left} left")
    else:
        lines.append(f"  -> the {other.method} allocation would give {other_final:.2f}% "
                     f"({other.used} used, {other.left} left)")
    return StudentGrade(student_id=student.student_id, name=student.name, status=student.status,
                        assessments=tuple(grades), allocation=used, alternative=other,
                        alternative_final=other_final, categories=percents, final=final,
                        letter=letter, lines=tuple(lines))


def grade_all(students: Iterable[StudentRecords], specs: Sequence[AssessmentSpec],
              course: CourseConfig, as_of: dt.datetime,
              allocation: str | None = None) -> list[StudentGrade]:
    return [grade_student(s, specs, course, as_of, allocation) for s in students]


__all__ = [
    "AssessmentSpec", "Attempt", "StudentRecords", "AssessmentEntry", "AssessmentGrade",
    "Allocation", "StudentGrade", "Lateness", "as_course_time", "late_days", "late_day_end",
    "evaluate_assessment", "resolve_category", "allocate_chronological", "allocate_best",
    "final_shares", "letter_for", "grade_student", "grade_all",
]
