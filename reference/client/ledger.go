package client

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/mppws/conformance/reference/tempo"
)

// Ledger is the payer's memory: the highest cumulative amount signed on each
// channel and what has arrived on it, by the payer's own count, which every
// receipt must match. A real wallet keeps this
// across connections because vouchers are cumulative; so does the reference
// client, and the CLI can persist it to a file between runs.
// A Ledger is safe for concurrent sessions.
type Ledger struct {
	mu       sync.Mutex
	accounts map[tempo.Hash]*Account
}

// Account is what the ledger knows of one channel.
type Account struct {
	Signed *big.Int `json:"signed"` // highest cumulative amount signed
	Spent  *big.Int `json:"spent"`  // what the units that arrived cost
	Units  uint64   `json:"units"`  // units that arrived
}

// NewLedger returns an empty ledger: nothing signed yet.
func NewLedger() *Ledger { return &Ledger{accounts: map[tempo.Hash]*Account{}} }

func (l *Ledger) account(id tempo.Hash) *Account {
	a, ok := l.accounts[id]
	if !ok {
		a = &Account{Signed: new(big.Int), Spent: new(big.Int)}
		l.accounts[id] = a
	}
	return a
}

// Snapshot returns a copy of what the ledger knows of a channel.
func (l *Ledger) Snapshot(id tempo.Hash) Account {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.account(id)
	return Account{Signed: new(big.Int).Set(a.Signed), Spent: new(big.Int).Set(a.Spent), Units: a.Units}
}

// next reserves the next cumulative amount to sign: at least want, above
// everything signed before by at least one tick, and never over the deposit.
func (l *Ledger) next(id tempo.Hash, want, tick, deposit *big.Int) (*big.Int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.account(id)
	amount := new(big.Int).Add(a.Signed, tick)
	if want.Cmp(amount) > 0 {
		amount.Set(want)
	}
	if amount.Cmp(deposit) > 0 {
		amount.Set(deposit)
	}
	if amount.Cmp(a.Signed) <= 0 {
		return nil, fmt.Errorf("channel %s is exhausted: %s of deposit %s already signed", id, a.Signed, deposit)
	}
	a.Signed.Set(amount)
	return new(big.Int).Set(amount), nil
}

// settle records the totals of what arrived; they only ever grow.
func (l *Ledger) settle(id tempo.Hash, spent *big.Int, units uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.account(id)
	if spent.Cmp(a.Spent) > 0 {
		a.Spent.Set(spent)
	}
	a.Units = max(a.Units, units)
}

// MarshalJSON writes the ledger as {channelId: account}.
func (l *Ledger) MarshalJSON() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*Account, len(l.accounts))
	for id, a := range l.accounts {
		out[id.String()] = a
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote, strictly: a ledger file is
// what keeps vouchers increasing, so a repeated channel or member, or a
// misspelt one, is an error rather than a silent zero.
func (l *Ledger) UnmarshalJSON(b []byte) error {
	var in map[string]*Account
	if err := jsonv2.Unmarshal(b, &in, jsonv2.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	accounts := make(map[tempo.Hash]*Account, len(in))
	for k, a := range in {
		id, err := tempo.ParseHash(k)
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if _, dup := accounts[id]; dup {
			return fmt.Errorf("ledger: channel %s appears twice", id)
		}
		if a == nil || a.Signed == nil || a.Spent == nil || a.Signed.Sign() < 0 || a.Spent.Sign() < 0 {
			return fmt.Errorf("ledger: channel %s: signed and spent must be non-negative amounts", k)
		}
		accounts[id] = a
	}
	l.mu.Lock()
	l.accounts = accounts
	l.mu.Unlock()
	return nil
}
