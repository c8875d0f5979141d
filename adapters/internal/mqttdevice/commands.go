package mqttdevice

import "log/slog"

// SubscribeCommands subscribes handle to filter, a topic on which people
// send a device commands: a write on <point topic>/set, bytes on .../tx, an
// AT command on .../at. A retained message there is a command from the past
// that the broker would hand over at every start, so it is not passed on:
// it is logged, and ignored (when not nil) is called to count it. Messages
// published after the subscription started reach handle, with or without
// the retain flag.
func SubscribeCommands(sub Subscriber, filter string, log *slog.Logger, handle func(topic string, payload []byte), ignored func()) (unsubscribe func(), err error) {
	return sub.Subscribe(filter, func(topic string, payload []byte, retained bool) {
		if !retained {
			handle(topic, payload)
			return
		}
		log.Warn("retained command ignored; publish commands without the retain flag", "topic", topic)
		if ignored != nil {
			ignored()
		}
	})
}
