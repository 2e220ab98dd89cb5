// milter-test-listener: a milter that MilterTests start in a child process, because libmilter
// runs its main loop once per process. It records every event to a JSON-lines file and
// replies as its command-line options request. All work happens in ListenerMain.swift: callbacks must
// not be written in this file's top-level code, which is main-actor isolated.
import Glibc

exit(runListener(arguments: Array(CommandLine.arguments.dropFirst())))
