"""Database: typed tables, the engine and sessions."""
