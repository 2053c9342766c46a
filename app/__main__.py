from microville.cli import main

main()
