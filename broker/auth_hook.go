package broker

import (
	"context"
	"log/slog"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edged/edged/mqttauth"
)

// ListenerAuth is how one listener authenticates and authorises clients.
//
//   - Users nil, AllowAnonymous true: every client is accepted, whatever
//     user name it gives (the name is still used for ACL %u).
//   - Users nil, AllowAnonymous false: every client is refused, as Mosquitto
//     2 does without a password file.
//   - Users set: a client giving a user name must give that user's password;
//     a client giving none is accepted only when AllowAnonymous is true.
//   - ACL nil: an accepted client may publish and subscribe anywhere.
type ListenerAuth struct {
	Users          *mqttauth.Users
	ACL            *mqttauth.ACL
	AllowAnonymous bool
}

// AuthHook is a mochi-mqtt hook that authenticates CONNECTs and checks
// publishes, subscriptions and deliveries against the ACL of the listener
// the client came in on. A client on a listener it was not configured for is
// refused. The in-process inline client is always allowed.
type AuthHook struct {
	mqtt.HookBase
	byListener map[string]ListenerAuth
	log        *slog.Logger
	logins     atomic.Uint64
	acl        atomic.Uint64
	// withhold, when set, may refuse a delivery (or subscription) for its
	// own reason, which it counts (flowControl.withhold).
	withhold func(cl *mqtt.Client) bool
}

// NewAuthHook returns a hook enforcing byListener, keyed by listener id.
// The map is copied.
func NewAuthHook(byListener map[string]ListenerAuth, log *slog.Logger) *AuthHook {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := make(map[string]ListenerAuth, len(byListener))
	for k, v := range byListener {
		m[k] = v
	}
	return &AuthHook{byListener: m, log: log.With("hook", "auth")}
}

// ID returns the hook's id in mochi-mqtt.
func (h *AuthHook) ID() string { return "edged-auth" }

// Provides reports the events the hook takes: authentication and ACL checks.
func (h *AuthHook) Provides(b byte) bool { return authHookEvents.has(b) }

var authHookEvents = newHookEvents(mqtt.OnConnectAuthenticate, mqtt.OnACLCheck)

// Refused returns how many logins and how many ACL checks were refused so
// far. ACL refusals include messages withheld from a subscriber whose
// subscription is wider than its read rules.
func (h *AuthHook) Refused() (logins, acl uint64) {
	return h.logins.Load(), h.acl.Load()
}

// OnConnectAuthenticate accepts or refuses a CONNECT. The password is never
// logged.
func (h *AuthHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	user := string(pk.Connect.Username)
	la, ok := h.byListener[cl.Net.Listener]
	var why string
	switch {
	case !ok:
		why = "listener has no authentication configured"
	case user == "":
		if la.AllowAnonymous {
			return true
		}
		why = "anonymous clients not allowed"
	case la.Users == nil:
		if la.AllowAnonymous {
			return true
		}
		why = "no users file and anonymous clients not allowed"
	case !pk.Connect.PasswordFlag:
		why = "no password given"
	case !la.Users.Check(user, string(pk.Connect.Password)):
		why = "wrong user name or password"
	default:
		return true
	}
	h.logins.Add(1)
	h.log.Info("login refused", "reason", why, "username", user, "client", cl.ID,
		"listener", cl.Net.Listener, "remote", cl.Net.Remote)
	return false
}

// OnACLCheck reports whether the client may write (publish to) or read
// (subscribe to, receive from) topic.
func (h *AuthHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	if !write && h.withhold != nil && h.withhold(cl) {
		return false
	}
	la, ok := h.byListener[cl.Net.Listener]
	if ok && (la.ACL == nil || la.ACL.Allowed(cl.ID, string(cl.Properties.Username), topic, write)) {
		return true
	}
	h.acl.Add(1)
	if h.log.Enabled(context.Background(), slog.LevelDebug) {
		h.log.Debug("acl refused", "client", cl.ID, "username", string(cl.Properties.Username),
			"listener", cl.Net.Listener, "topic", topic, "write", write)
	}
	return false
}
