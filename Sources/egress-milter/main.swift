// Entry point of the egress-milter daemon. Everything runs from Daemon.main(), which lives in
// another file on purpose: libmilter calls back on its own pthreads, and code in main.swift's
// top level is main-actor isolated, so a callback reached from here would trip the runtime's
// isolation check and kill the process.
import Glibc

exit(Daemon.main(arguments: CommandLine.arguments))
