from protokit.entry import main

main()
