"""The moderators' web dashboard over the conversation log (docs/dashboard.md).

Importing this package is cheap: FastAPI and uvicorn load only when the dashboard starts.
"""
