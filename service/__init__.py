"""The ganserve API: FastAPI app, settings, database, inference and the gallery. Never imports torch."""
