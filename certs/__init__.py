"""Certificates: CA and serving certificates made with cryptography, for the webhook and the sandbox."""
