package main

import "testing"

func TestSnakeCaseKeys(t *testing.T) {
	cases := map[string]string{
		"DroppedQueueFull": "dropped_queue_full",
		"URCs":             "urcs",
		"RefusedACL":       "refused_acl",
		"BytesOut":         "bytes_out",
		"Online":           "online",
		"TxDropped":        "tx_dropped",
		"HTTPServer":       "http_server",
	}
	for in, want := range cases {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
