"""The privacy officer's desk: a small server-rendered web application over the request
register (Starlette, Jinja2 templates and plain HTML forms, served by uvicorn).

- :mod:`.accounts`: officers and viewers (argon2 password hashes) and server-side sessions,
  in the register's own database;
- :mod:`.launch`: starts the request jobs through Dagster's GraphQL API (``dagster-graphql``),
  passing only the case id;
- :mod:`.app`: the pages and forms. Every action calls the same register functions as the
  command line (``contact_register.requests``), so the rules and the audit trail are one.
"""

from contact_register.desk.app import create_app

__all__ = ["create_app"]
