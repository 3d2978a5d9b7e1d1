from btbuild.cli.main import main

main()
