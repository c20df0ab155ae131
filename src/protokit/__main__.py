from protokit.cli import main

main()
