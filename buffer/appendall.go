package buffer

import (
	"context"

	"github.com/edged/edged/telemetry"
)

// AppendAll stores msgs in their order, as Append does each, but queues them
// all before waiting, so they share commits with each other and with
// concurrent Appends (one commit for a whole backlog instead of one each).
// It returns one error per message: nil when that message was committed.
func (b *Buffer) AppendAll(ctx context.Context, msgs []telemetry.Message) []error {
	errs := make([]error, len(msgs))
	reqs := make([]*request, len(msgs))
	for i, m := range msgs {
		r := &request{kind: opAppend, msg: m, done: make(chan error, 1)}
		if errs[i] = b.send(ctx, r); errs[i] == nil {
			reqs[i] = r
		}
	}
	for i, r := range reqs {
		if r == nil {
			continue
		}
		select {
		case errs[i] = <-r.done:
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}
