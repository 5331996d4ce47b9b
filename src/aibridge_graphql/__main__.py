from aibridge_graphql.cli import main

main()
