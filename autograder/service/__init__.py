"""The grading service: students submit from the browser or the command line, a durable queue in
the course database, warm local workers, feedback filtered by visibility.

* ``app`` — ``create_app(settings)``: the FastAPI app (``/api/v1``, ``/healthz``, the pages);
* ``api`` — the JSON API; ``auth`` — tokens, sessions, invitations, CSRF;
* ``feedback`` — what a student may see of a result (visibility and time);
* ``queue`` — jobs: enqueue with the submission, claim with a lease, record once;
* ``storage`` — uploads by content hash; ``models`` — the service's tables;
* ``workers`` — the embedded default's local grading worker processes;
* ``cli`` — ``autograder serve``, ``token``, ``invite``, ``submit``.
"""
