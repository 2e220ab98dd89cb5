// Placeholder until the wrapper lands: fails with EX_TEMPFAIL so nothing is lost.
import Glibc
print("egress-sendmail: not built yet")
exit(75)
