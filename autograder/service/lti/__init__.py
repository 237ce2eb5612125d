"""LTI 1.3 with an LMS (Canvas, Moodle, Blackboard...), through PyLTI1p3 (``pylti1p3next``):

* ``config``: course.toml's ``[lti]`` table, the tool's key, PyLTI1p3's tool configuration;
* ``platform``: PyLTI1p3 adapted to Starlette and the course database (nonces used once);
* ``people``: LTI roles to this course's roles; matching or adding students and staff;
* ``launch``: what a validated launch records (context, person, resource link -> assignment);
* ``passback``: Assignment and Grade Services (idempotent, retried, per-student status);
* ``roster``: Names and Role Provisioning Services (roster sync);
* ``routes``: ``/lti/login``, ``/lti/launch``, ``/lti/jwks`` and the staff page ``/staff/lti``;
* ``models``: the tables (migration 0007).

``router`` is imported lazily: a grading worker imports ``passback`` without the web stack.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "router":
        from autograder.service.lti.routes import router

        return router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
