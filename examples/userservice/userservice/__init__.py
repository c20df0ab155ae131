"""The example UserService: protokit's generated base, implemented over sqlite3."""
