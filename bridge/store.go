package bridge

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// nopStore is the paho store of every connection: it keeps nothing. The
// buffer is the only store of outgoing messages, so after a reconnect paho
// has nothing of its own to resend out of order (paho #731), and a publish
// costs no map updates in paho's memory store.
type nopStore struct{}

var _ mqtt.Store = nopStore{}

func (nopStore) Open()                             {}
func (nopStore) Put(string, packets.ControlPacket) {}
func (nopStore) Get(string) packets.ControlPacket  { return nil }
func (nopStore) All() []string                     { return nil }
func (nopStore) Del(string)                        {}
func (nopStore) Close()                            {}
func (nopStore) Reset()                            {}
