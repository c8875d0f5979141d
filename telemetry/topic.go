package telemetry

import (
	"fmt"
	"strings"
)

// DefaultTemplate is the topic of a point unless its device says otherwise.
const DefaultTemplate = "{gateway}/{device}/{point}"

// templateVars are the placeholders a topic template may use.
var templateVars = []string{"{gateway}", "{device}", "{point}"}

// Template is a topic template such as "{gateway}/{device}/{point}".
type Template string

// Validate reports an unknown placeholder, a wildcard or an empty level.
func (t Template) Validate() error {
	s := string(t)
	if s == "" {
		return fmt.Errorf("empty topic template")
	}
	if strings.ContainsAny(s, "+#") {
		return fmt.Errorf("topic template %q contains a wildcard (+ or #)", s)
	}
	rest := s
	for _, v := range templateVars {
		rest = strings.ReplaceAll(rest, v, "x")
	}
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		return fmt.Errorf("topic template %q has an unknown placeholder; use {gateway}, {device} and {point}", s)
	}
	return nil
}

// Expand fills in the placeholders.
func (t Template) Expand(gateway, device, point string) string {
	r := strings.NewReplacer("{gateway}", gateway, "{device}", device, "{point}", point)
	return r.Replace(string(t))
}

// StatusTopic is the retained online/offline topic of a device.
func StatusTopic(gateway, device string) string { return gateway + "/" + device + "/status" }

// GatewayStatusTopic is the retained online/offline topic of edged itself
// on its local broker: online while it runs, offline once it stopped.
func GatewayStatusTopic(gateway string) string { return gateway + "/status" }

// Message is one MQTT message as the parts of edged hand it to each other.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Origin says who published a message into the local broker: a network
// client, or a part of edged in-process. A part that names itself when it
// publishes (the uplink, "uplink") recognises its own messages by it when
// the broker hands them back; adapters publish without a name.
type Origin struct {
	// Client is the network client's id; empty for an in-process publish.
	Client string
	// Part is the name an in-process publisher gave; empty otherwise.
	Part string
}

// InProcess reports whether a part of edged published the message.
func (o Origin) InProcess() bool { return o.Client == "" }
