from tcpscope.cli import main

main()
