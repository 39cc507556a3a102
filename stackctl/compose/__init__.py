"""The only code that talks to Docker and Compose."""
