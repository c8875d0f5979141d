// Package liveness is how a long-running part of edged says whether its
// loops make progress, so that the systemd watchdog is pinged only while they
// do (and, later, so a health endpoint can say which part is stuck).
//
// A loop is healthy while it waits for work (a timer, a channel, a context)
// and while it is inside one operation for less than that operation's own
// bound. It is stuck when one operation has lasted longer than the bound the
// part gave for it: a Modbus read past its timeout and retries, a commit that
// never returns, a publish blocked on a dead socket. The package measures
// only that; it does not restart anything and knows no part.
package liveness
