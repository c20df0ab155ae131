"""`python -m userservice`: serve the UserService (port from PORT / PROTOKIT_PORT, default 50051)."""

from userservice.user_service import main

main()
