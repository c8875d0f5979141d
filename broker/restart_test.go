package broker

import (
	"testing"
	"time"

	"github.com/edged/edged/internal/testpeer"
)

func TestRetainedMessagesAndSessionsSurviveARestart(t *testing.T) {
	state := t.TempDir()

	// First life: a retained message, and a persistent session whose client
	// is away when a QoS 1 message for it arrives.
	b1, err := New(loopbackCfg(), state, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	stop1 := runBroker(t, b1)
	h, p := hostPort(t, b1.Addrs()[0].String())
	if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-q", "1", "-r", "-t", "plant/status", "-m", "online"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	for _, v := range []struct{ version, id string }{{"mqttv311", "keeper3"}, {"mqttv5", "keeper5"}} {
		args := []string{"-h", h, "-p", p, "-V", v.version, "-i", v.id, "-c", "-q", "1", "-t", "queue/" + v.id}
		if v.version == "mqttv5" {
			args = append(args, "-x", "3600")
		}
		sub := testpeer.StartMosquittoSub(t, args...)
		sub.Stop()
		testpeer.Eventually(t, 30*time.Second, v.id+" gone", func() bool { return b1.Stats().ClientsConnected == 0 })
		if out, err := testpeer.MosquittoPub(t, "-h", h, "-p", p, "-q", "1", "-t", "queue/"+v.id, "-m", "while away"); err != nil {
			t.Fatalf("mosquitto_pub: %v: %s", err, out)
		}
	}
	stop1()

	// Second life on the same state_dir.
	b2, err := New(loopbackCfg(), state, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runBroker(t, b2))
	h, p = hostPort(t, b2.Addrs()[0].String())

	t.Run("the retained message is still there", func(t *testing.T) {
		sub := testpeer.StartMosquittoSub(t, "-h", h, "-p", p, "-t", "plant/#")
		if got := sub.Next(t, 5*time.Second); got != "plant/status online" {
			t.Fatalf("got %q", got)
		}
	})
	for _, v := range []struct{ version, id string }{{"mqttv311", "keeper3"}, {"mqttv5", "keeper5"}} {
		t.Run("the "+v.version+" persistent session gets the message queued for it", func(t *testing.T) {
			args := []string{"-h", h, "-p", p, "-V", v.version, "-i", v.id, "-c", "-q", "1", "-t", "queue/" + v.id}
			if v.version == "mqttv5" {
				args = append(args, "-x", "3600")
			}
			sub := testpeer.StartMosquittoSub(t, args...)
			if got := sub.Next(t, 5*time.Second); got != "queue/"+v.id+" while away" {
				t.Fatalf("got %q", got)
			}
		})
	}
}
