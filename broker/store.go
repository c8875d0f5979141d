package broker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"

	"github.com/edged/edged/liveness"
	"github.com/edged/edged/sqlitefile"
)

// storeSchemaVersion is written to PRAGMA user_version.
const storeSchemaVersion = 1

const (
	storeQueueLen = 4096 // pending writes before hooks wait for the writer
	storeBatchMax = 512  // writes committed in one transaction at most
	// storeCommitLimit is how long one commit may take before the
	// watchdog hears that the writer is stuck: busy_timeout (5s) and a
	// slow SD card's fsync take seconds, a minute means the disk stopped.
	storeCommitLimit = time.Minute
)

var storeSchema = []string{
	`CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, data BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS subscriptions (client TEXT NOT NULL, filter TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (client, filter))`,
	`CREATE TABLE IF NOT EXISTS inflight (client TEXT NOT NULL, packet_id INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE (client, packet_id))`,
	`CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, data BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS sysinfo (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL)`,
}

// storeOpKind names a prepared statement run by the writer.
type storeOpKind int

const (
	opPutClient storeOpKind = iota
	opDelClient             // the client, its subscriptions and its in-flight messages
	opPutSub
	opDelSub
	opDelSubs // all of a client's subscriptions and in-flight messages
	opPutInflight
	opDelInflight
	opPutRetained
	opDelRetained
	opPutSys
	opFlush // no statement: closes done once everything before it is committed
	storeOpKinds
)

var storeSQL = [storeOpKinds][]string{
	opPutClient: {`INSERT INTO clients (id, data) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET data = excluded.data`},
	opDelClient: {`DELETE FROM clients WHERE id = ?1`, `DELETE FROM subscriptions WHERE client = ?1`, `DELETE FROM inflight WHERE client = ?1`},
	opPutSub: {`INSERT INTO subscriptions (client, filter, data) VALUES (?1, ?2, ?3)
		ON CONFLICT (client, filter) DO UPDATE SET data = excluded.data`},
	opDelSub:  {`DELETE FROM subscriptions WHERE client = ?1 AND filter = ?2`},
	opDelSubs: {`DELETE FROM subscriptions WHERE client = ?1`, `DELETE FROM inflight WHERE client = ?1`},
	opPutInflight: {`INSERT INTO inflight (client, packet_id, data) VALUES (?1, ?2, ?3)
		ON CONFLICT (client, packet_id) DO UPDATE SET data = excluded.data`},
	opDelInflight: {`DELETE FROM inflight WHERE client = ?1 AND packet_id = ?2`},
	opPutRetained: {`INSERT INTO retained (topic, data) VALUES (?1, ?2) ON CONFLICT (topic) DO UPDATE SET data = excluded.data`},
	opDelRetained: {`DELETE FROM retained WHERE topic = ?1`},
	opPutSys:      {`INSERT INTO sysinfo (id, data) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET data = excluded.data`},
}

// storeOp is one queued write; args match the statement's parameters.
type storeOp struct {
	kind storeOpKind
	args []any
	done chan struct{} // opFlush only
}

// Store is a mochi-mqtt storage hook that keeps retained messages and
// persistent sessions (clean session off, or an MQTT 5 session expiry above
// zero) with their subscriptions and in-flight QoS 1/2 messages in a SQLite
// database, so that they survive a restart of the broker.
//
// Hooks encode and queue their writes; one goroutine commits them in
// batches (WAL, synchronous=FULL: every commit is fsynced, so it survives a
// power cut). What the broker acknowledges is committed before the
// acknowledgement: a retained message published at QoS 1 or 2 by a network
// client waits for its commit before mochi sends the PUBACK (PUBREC), and a
// persistent session's subscriptions before the SUBACK; concurrent waiters
// share a commit. The rest is not waited for, so a busy broker does not wait
// on the disk per message: mochi records a session after its CONNACK and
// queues a message for a persistent subscriber after the publisher's
// PUBACK, so a crash or power cut loses at most the writes of the last few
// milliseconds there (a QoS 1 message queued for an offline persistent
// session, or an in-flight message's state, missing or delivered again).
// Close (and mochi's Stop) commit everything queued.
//
// The inline client and $SYS topics are never stored. Retained messages
// published by the inline client are, like anyone's.
type Store struct {
	mqtt.HookBase
	path string
	log  *slog.Logger
	db   *sql.DB
	stmt [storeOpKinds][]*sql.Stmt

	mu     sync.RWMutex // held for reading while queueing; for writing by Close
	closed bool
	ops    chan storeOp
	wdone  chan struct{} // closed when the writer has exited

	// sessMu makes "is this connection still the session's owner?" and the
	// write that follows one step, so that a late disconnect of a replaced
	// connection cannot overwrite what its successor stored.
	sessMu sync.Mutex

	sysMu sync.Mutex
	sys   *system.Info // the last $SYS snapshot, written at Stop

	failures uint64 // failed writes, guarded by the writer

	loop  *liveness.Loop // busy during each commit
	stall func()         // when set (by tests), called at the start of each commit
}

// NewStore opens (creating it if needed) the SQLite database at path. A
// file that is not a valid database is renamed to "<path>.corrupt-<UTC
// time>", logged as an error, and replaced by an empty one; an error that is
// not corruption, such as a permission problem, is returned as itself.
func NewStore(path string, log *slog.Logger) (*Store, error) {
	return newStore(path, log, liveness.NewSet(nil), nil)
}

// newStore is NewStore with the writer's commits recorded in live, and
// stall (tests) called at the start of each commit.
func newStore(path string, log *slog.Logger, live *liveness.Set, stall func()) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("hook", "store")
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("store %q: path must be non-empty and contain no '?'", path)
	}
	s, err := storeOpen(path, log)
	if sqlitefile.IsCorrupt(err) {
		aside, merr := sqlitefile.MoveAside(path, time.Now())
		if merr != nil {
			return nil, fmt.Errorf("store %s: corrupt (%v) and cannot move it aside: %w", path, err, merr)
		}
		log.Error("state database is corrupt; moved it aside and started empty: retained messages and persistent sessions are lost",
			"path", path, "moved_to", aside, "error", err)
		s, err = storeOpen(path, log)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s.ops = make(chan storeOp, storeQueueLen)
	s.wdone = make(chan struct{})
	s.loop = live.Loop("broker store writer", storeCommitLimit)
	s.stall = stall
	go s.writer()
	return s, nil
}

// storeBusyTimeoutMS is how long SQLite waits for another connection's
// lock before a statement fails; commit then retries (sqlitefile.RetryBusy).
const storeBusyTimeoutMS = 1000

// storeOpen opens and checks the database (sqlitefile: the file is created
// first, so a permission problem reads as itself; quick_check finds a torn
// page) and prepares the schema and statements.
func storeOpen(path string, log *slog.Logger) (s *Store, err error) {
	db, err := sqlitefile.Open(path, []string{
		fmt.Sprintf("busy_timeout(%d)", storeBusyTimeoutMS), "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(OFF)",
	}, url.Values{"_txlock": {"immediate"}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	// One connection: the per-connection pragmas hold for every statement,
	// and the single writer never contends with itself.
	db.SetMaxOpenConns(1)

	if err := sqlitefile.Check(db); err != nil {
		return nil, err
	}
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return nil, err
	}
	if version > storeSchemaVersion {
		return nil, fmt.Errorf("schema version %d is newer than this edged understands (%d)", version, storeSchemaVersion)
	}
	for _, q := range storeSchema {
		if _, err := db.Exec(q); err != nil {
			return nil, fmt.Errorf("create schema: %w", err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, storeSchemaVersion)); err != nil {
		return nil, err
	}
	// Rows of sessions that no longer exist would never be loaded (mochi
	// drops them) but would stay forever; a few paths in mochi forget an
	// in-flight message without telling the hooks.
	for _, q := range []string{
		`DELETE FROM subscriptions WHERE client NOT IN (SELECT id FROM clients)`,
		`DELETE FROM inflight WHERE client NOT IN (SELECT id FROM clients)`,
	} {
		if _, err := db.Exec(q); err != nil {
			return nil, fmt.Errorf("tidy: %w", err)
		}
	}
	s = &Store{path: path, log: log, db: db}
	for k, qs := range storeSQL {
		for _, q := range qs {
			st, err := db.Prepare(q)
			if err != nil {
				return nil, fmt.Errorf("prepare: %w", err)
			}
			s.stmt[k] = append(s.stmt[k], st)
		}
	}
	return s, nil
}

// writer commits queued writes in batches until the queue is closed.
func (s *Store) writer() {
	defer close(s.wdone)
	batch := make([]storeOp, 0, storeBatchMax)
	for op := range s.ops {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < storeBatchMax {
			select {
			case op, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []storeOp) {
	s.loop.Busy("a commit")
	defer s.loop.Idle()
	if s.stall != nil {
		s.stall()
	}
	var flushes []chan struct{}
	writes := 0
	for _, op := range batch {
		if op.kind == opFlush {
			flushes = append(flushes, op.done)
		} else {
			writes++
		}
	}
	if writes > 0 {
		err := sqlitefile.RetryBusy(context.Background(), func() error { return s.tx(batch) },
			func(attempt int, err error) {
				s.log.Debug("state database busy; retrying commit", "attempt", attempt, "error", err)
			})
		if err != nil {
			s.failed(writes, err)
		}
	}
	for _, c := range flushes {
		close(c)
	}
}

// tx runs the batch's writes as one transaction. A write that fails for a
// reason of its own is counted and skipped; a lock held by another process
// fails the whole transaction, so that commit can run it again.
func (s *Store) tx(batch []storeOp) (err error) {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// tx.Stmt binds a statement to the transaction anew on every call; bind
	// each kind once per batch.
	var txStmt [storeOpKinds][]*sql.Stmt
	for _, op := range batch {
		if op.kind == opFlush {
			continue
		}
		sts := txStmt[op.kind]
		if sts == nil {
			for _, st := range s.stmt[op.kind] {
				sts = append(sts, tx.Stmt(st))
			}
			txStmt[op.kind] = sts
		}
		for _, st := range sts {
			if _, err := st.Exec(op.args...); err != nil {
				if sqlitefile.IsBusy(err) {
					return err
				}
				s.failed(1, err)
			}
		}
	}
	return tx.Commit()
}

func (s *Store) failed(n int, err error) {
	s.failures += uint64(n)
	s.log.Error("state database write failed", "error", err, "writes", n, "failed_total", s.failures)
}

// enqueue hands a write to the writer; after Close it is dropped.
func (s *Store) enqueue(kind storeOpKind, args ...any) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	s.ops <- storeOp{kind: kind, args: args}
}

// flush waits until every write queued before it is committed.
func (s *Store) flush() {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return
	}
	done := make(chan struct{})
	s.ops <- storeOp{kind: opFlush, done: done}
	s.mu.RUnlock()
	<-done
}

// Close commits what is queued and closes the database. Hook events that
// arrive later are ignored. It is safe to call more than once.
func (s *Store) Close() error {
	s.saveSys()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.wdone
	for _, sts := range s.stmt {
		for _, st := range sts {
			_ = st.Close()
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store %s: close: %w", s.path, err)
	}
	return nil
}

// ID returns the hook's id in mochi-mqtt.
func (s *Store) ID() string { return "edged-store" }

// Provides reports the storage events the hook takes.
func (s *Store) Provides(b byte) bool { return storeEvents.has(b) }

var storeEvents = newHookEvents(
	mqtt.OnSessionEstablished,
	mqtt.OnDisconnect,
	mqtt.OnSubscribed,
	mqtt.OnUnsubscribed,
	mqtt.OnRetainMessage,
	mqtt.OnWillSent,
	mqtt.OnQosPublish,
	mqtt.OnQosComplete,
	mqtt.OnQosDropped,
	mqtt.OnSysInfoTick,
	mqtt.OnClientExpired,
	mqtt.OnRetainedExpired,
	mqtt.StoredClients,
	mqtt.StoredInflightMessages,
	mqtt.StoredRetainedMessages,
	mqtt.StoredSubscriptions,
	mqtt.StoredSysInfo,
)

// Init accepts no configuration: everything was given to NewStore.
func (s *Store) Init(config any) error { return nil }

// Stop is called by mochi-mqtt when the server closes: it saves the last
// $SYS figures and commits what is queued. The database stays open for the
// disconnect events that still follow; the owner calls Close.
func (s *Store) Stop() error {
	s.saveSys()
	s.flush()
	return nil
}

func (s *Store) saveSys() {
	s.sysMu.Lock()
	info := s.sys
	s.sys = nil
	s.sysMu.Unlock()
	if info == nil {
		return
	}
	data, err := storage.SystemInfo{Info: *info, T: storage.SysInfoKey, ID: storage.SysInfoKey}.MarshalBinary()
	if err == nil {
		s.enqueue(opPutSys, data)
	}
}

// storePersistent reports whether cl's session outlives its connection, by
// the same rule mochi-mqtt uses to expire sessions on disconnect.
func storePersistent(cl *mqtt.Client) bool {
	if cl.Net.Inline {
		return false
	}
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}

func (s *Store) putClient(cl *mqtt.Client) {
	props := cl.Properties.Props.Copy(false)
	in := storage.Client{
		ID:              cl.ID,
		T:               storage.ClientKey,
		Remote:          cl.Net.Remote,
		Listener:        cl.Net.Listener,
		Username:        cl.Properties.Username,
		Clean:           cl.Properties.Clean,
		ProtocolVersion: cl.Properties.ProtocolVersion,
		Properties: storage.ClientProperties{
			SessionExpiryInterval:     props.SessionExpiryInterval,
			SessionExpiryIntervalFlag: props.SessionExpiryIntervalFlag,
			AuthenticationMethod:      props.AuthenticationMethod,
			AuthenticationData:        props.AuthenticationData,
			RequestProblemInfo:        props.RequestProblemInfo,
			RequestProblemInfoFlag:    props.RequestProblemInfoFlag,
			RequestResponseInfo:       props.RequestResponseInfo,
			ReceiveMaximum:            props.ReceiveMaximum,
			TopicAliasMaximum:         props.TopicAliasMaximum,
			User:                      props.User,
			MaximumPacketSize:         props.MaximumPacketSize,
		},
		Will: storage.ClientWill(cl.Properties.Will),
	}
	data, err := in.MarshalBinary()
	if err != nil {
		s.log.Error("encode client", "client", cl.ID, "error", err)
		return
	}
	s.enqueue(opPutClient, cl.ID, data)
}

// OnSessionEstablished records a persistent session. A clean start discards
// whatever was stored for the client id before.
func (s *Store) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if !storePersistent(cl) {
		s.enqueue(opDelClient, cl.ID)
		return
	}
	if cl.Properties.Clean {
		s.enqueue(opDelSubs, cl.ID)
	}
	s.putClient(cl)
}

// OnWillSent updates the stored client once its will is spent.
func (s *Store) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if storePersistent(cl) {
		s.putClient(cl)
	}
}

// OnDisconnect forgets a session that ends with its connection and keeps
// one that does not. A connection replaced by a new one for the same client
// id leaves the record to the new one.
func (s *Store) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if cl.Net.Inline {
		return
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	// mochi marks the old connection taken over before it announces the
	// new session, so under sessMu this check cannot go stale.
	if cl.IsTakenOver() || errors.Is(cl.StopCause(), packets.ErrSessionTakenOver) {
		return
	}
	if expire || !storePersistent(cl) {
		s.enqueue(opDelClient, cl.ID)
		return
	}
	s.putClient(cl)
}

// OnClientExpired forgets a session whose expiry interval has passed.
func (s *Store) OnClientExpired(cl *mqtt.Client) {
	if !cl.Net.Inline {
		s.enqueue(opDelClient, cl.ID)
	}
}

// OnSubscribed stores the granted subscriptions of a persistent session.
func (s *Store) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	if !storePersistent(cl) {
		return
	}
	for i, f := range pk.Filters {
		if i >= len(reasonCodes) || reasonCodes[i] > packets.CodeGrantedQos2.Code {
			continue
		}
		in := storage.Subscription{
			ID:                storage.SubscriptionKey + "_" + cl.ID + ":" + f.Filter,
			T:                 storage.SubscriptionKey,
			Client:            cl.ID,
			Qos:               reasonCodes[i],
			Filter:            f.Filter,
			Identifier:        f.Identifier,
			NoLocal:           f.NoLocal,
			RetainHandling:    f.RetainHandling,
			RetainAsPublished: f.RetainAsPublished,
		}
		data, err := in.MarshalBinary()
		if err != nil {
			continue
		}
		s.enqueue(opPutSub, cl.ID, f.Filter, data)
	}
	// mochi sends the SUBACK after this returns: committed before it.
	s.flush()
}

// OnUnsubscribed removes subscriptions of a persistent session.
func (s *Store) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if !storePersistent(cl) {
		return
	}
	for _, f := range pk.Filters {
		s.enqueue(opDelSub, cl.ID, f.Filter)
	}
}

func storeMessage(t string, cl *mqtt.Client, pk packets.Packet, sent int64) storage.Message {
	props := pk.Properties.Copy(false)
	return storage.Message{
		T:           t,
		Client:      cl.ID,
		Origin:      pk.Origin,
		FixedHeader: pk.FixedHeader,
		TopicName:   pk.TopicName,
		Payload:     pk.Payload,
		Created:     pk.Created,
		Sent:        sent,
		PacketID:    pk.PacketID,
		Properties: storage.MessageProperties{
			PayloadFormat:          props.PayloadFormat,
			PayloadFormatFlag:      props.PayloadFormatFlag,
			MessageExpiryInterval:  props.MessageExpiryInterval,
			ContentType:            props.ContentType,
			ResponseTopic:          props.ResponseTopic,
			CorrelationData:        props.CorrelationData,
			SubscriptionIdentifier: props.SubscriptionIdentifier,
			TopicAlias:             props.TopicAlias,
			User:                   props.User,
		},
	}
}

// OnRetainMessage stores or, for an empty payload, deletes the retained
// message of a topic.
func (s *Store) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	if strings.HasPrefix(pk.TopicName, "$SYS") {
		return
	}
	// mochi calls this before it acknowledges the publish: an acknowledged
	// one is on disk before its PUBACK.
	if !cl.Net.Inline && pk.FixedHeader.Qos > 0 {
		defer s.flush()
	}
	if r == -1 || len(pk.Payload) == 0 {
		s.enqueue(opDelRetained, pk.TopicName)
		return
	}
	m := storeMessage(storage.RetainedKey, cl, pk, 0)
	m.ID = storage.RetainedKey + "_" + pk.TopicName
	data, err := m.MarshalBinary()
	if err != nil {
		s.log.Error("encode retained message", "topic", pk.TopicName, "error", err)
		return
	}
	s.enqueue(opPutRetained, pk.TopicName, data)
}

// OnRetainedExpired deletes a retained message whose expiry has passed.
func (s *Store) OnRetainedExpired(topic string) {
	s.enqueue(opDelRetained, topic)
}

// OnQosPublish stores a QoS 1/2 message in flight to, or queued for, a
// persistent session. The PUBACK mochi-mqtt holds for an instant while
// acknowledging an incoming QoS 1 publish is not worth a write.
func (s *Store) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if !storePersistent(cl) || pk.FixedHeader.Type == packets.Puback {
		return
	}
	m := storeMessage(storage.InflightKey, cl, pk, sent)
	m.ID = storage.InflightKey + "_" + cl.ID + ":" + pk.FormatID()
	data, err := m.MarshalBinary()
	if err != nil {
		s.log.Error("encode in-flight message", "client", cl.ID, "error", err)
		return
	}
	s.enqueue(opPutInflight, cl.ID, int64(pk.PacketID), data)
}

// OnQosComplete removes an acknowledged in-flight message.
func (s *Store) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if storePersistent(cl) {
		s.enqueue(opDelInflight, cl.ID, int64(pk.PacketID))
	}
}

// OnQosDropped removes an in-flight message the broker gave up on.
func (s *Store) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	s.OnQosComplete(cl, pk)
}

// OnSysInfoTick keeps the latest $SYS figures in memory; they are written
// once, at Stop or Close, not every tick, to spare SD cards.
func (s *Store) OnSysInfoTick(info *system.Info) {
	c := info.Clone()
	s.sysMu.Lock()
	s.sys = c
	s.sysMu.Unlock()
}

// storeLoad reads every row of a one-column query, decoding each with dec;
// rows that do not decode are logged and skipped so that one bad row does
// not keep the broker from starting.
func (s *Store) storeLoad(what, query string, dec func([]byte) error) error {
	s.flush()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return storage.ErrDBFileNotOpen
	}
	rows, err := s.db.Query(query)
	if err != nil {
		return fmt.Errorf("store: load %s: %w", what, err)
	}
	defer rows.Close()
	bad := 0
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return fmt.Errorf("store: load %s: %w", what, err)
		}
		if err := dec(data); err != nil {
			bad++
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: load %s: %w", what, err)
	}
	if bad > 0 {
		s.log.Warn("skipped undecodable stored rows", "kind", what, "rows", bad)
	}
	return nil
}

// StoredClients returns the persistent sessions saved before the restart.
func (s *Store) StoredClients() ([]storage.Client, error) {
	v := []storage.Client{}
	err := s.storeLoad("clients", `SELECT data FROM clients ORDER BY id`, func(b []byte) error {
		var c storage.Client
		if err := c.UnmarshalBinary(b); err != nil || c.ID == "" {
			return errors.New("bad client")
		}
		v = append(v, c)
		return nil
	})
	return v, err
}

// StoredSubscriptions returns the subscriptions of the stored sessions.
func (s *Store) StoredSubscriptions() ([]storage.Subscription, error) {
	v := []storage.Subscription{}
	err := s.storeLoad("subscriptions", `SELECT data FROM subscriptions ORDER BY client, filter`, func(b []byte) error {
		var sub storage.Subscription
		if err := sub.UnmarshalBinary(b); err != nil || sub.Client == "" || sub.Filter == "" {
			return errors.New("bad subscription")
		}
		v = append(v, sub)
		return nil
	})
	return v, err
}

// StoredInflightMessages returns the QoS 1/2 messages still owed to stored
// sessions, in the order they were first stored.
func (s *Store) StoredInflightMessages() ([]storage.Message, error) {
	return s.loadMessages("in-flight messages", `SELECT data FROM inflight ORDER BY rowid`)
}

// StoredRetainedMessages returns the retained messages.
func (s *Store) StoredRetainedMessages() ([]storage.Message, error) {
	return s.loadMessages("retained messages", `SELECT data FROM retained ORDER BY topic`)
}

func (s *Store) loadMessages(what, query string) ([]storage.Message, error) {
	v := []storage.Message{}
	err := s.storeLoad(what, query, func(b []byte) error {
		var m storage.Message
		if err := m.UnmarshalBinary(b); err != nil || m.TopicName == "" && m.T == storage.RetainedKey {
			return errors.New("bad message")
		}
		v = append(v, m)
		return nil
	})
	return v, err
}

// StoredSysInfo returns the $SYS figures saved at the last shutdown.
func (s *Store) StoredSysInfo() (storage.SystemInfo, error) {
	var v storage.SystemInfo
	err := s.storeLoad("sysinfo", `SELECT data FROM sysinfo WHERE id = 1`, func(b []byte) error {
		return v.UnmarshalBinary(b)
	})
	return v, err
}
