"""The inner dev loop: Compose `develop.watch`, locally (`up --watch`) and on a cluster (`dev PROFILE`)."""
