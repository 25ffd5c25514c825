"""HTTP edge: FastAPI/Starlette app over the service layer."""
