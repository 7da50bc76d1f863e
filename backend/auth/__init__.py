"""Users, password hashing, browser sessions, API tokens and ownership checks."""
