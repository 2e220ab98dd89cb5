// Entry point of egressctl, the admin command line of egress-milter. The commands live in
// other files; main.swift only hands over the arguments and exits with the status they return.
import Glibc

exit(EgressControl.main(arguments: CommandLine.arguments))
