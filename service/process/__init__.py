"""The app as a server process: uvicorn with head limits, and the drain that SIGTERM starts."""
