"""The JSON API at /api/v1/: bearer tokens, problem+json errors, and an OpenAPI description generated from the
code (flask-smorest). Its views call the same rules as the pages, through the same transaction helper."""
