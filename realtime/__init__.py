"""realtime: a self-hosted, real-time discussion server on PostgreSQL."""

__version__ = "0.1.0"
