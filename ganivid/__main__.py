from ganivid.cli import main

main()
