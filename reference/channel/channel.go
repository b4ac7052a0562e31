// Package channel keeps the server-side accounting of pre-opened Tempo payment
// channels: which cumulative voucher has been accepted (protocol.md §6.6), how
// much of it has been spent (§6.7, §6.8), and wake-ups for deliveries paused
// until the client pays more (§6.9).
//
// Signatures are not verified here: the caller recovers the signer address
// from the voucher signature and passes it in, so this package stays free of
// crypto and can be tested with plain values.
package channel

import (
	"bytes"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/mppws/conformance/reference/tempo"
)

// State is a snapshot of one channel's accounting (protocol.md §6.7).
// Snapshots are deep copies: the caller may keep or modify them freely.
type State struct {
	// Channel is the immutable descriptor; its Deposit is the deposit the
	// store was created with, while Deposit below follows top-ups.
	Channel   tempo.Channel
	Deposit   *big.Int
	Accepted  *big.Int // highest accepted cumulative voucher amount (H)
	Signature []byte   // signature of the voucher that set Accepted (nil before the first)
	Spent     *big.Int
	Units     uint64
	// Finalized is set once the channel has been closed: it takes no more
	// vouchers or charges.
	Finalized bool
}

// Available is what the accepted vouchers still cover: Accepted - Spent.
// Nil amounts count as zero, so the zero State is usable.
func (s State) Available() *big.Int {
	a := new(big.Int)
	if s.Accepted != nil {
		a.Set(s.Accepted)
	}
	if s.Spent != nil {
		a.Sub(a, s.Spent)
	}
	return a
}

// EqualPolicy decides what a voucher equal to the accepted amount means; the
// SDKs disagree (protocol.md §8 item 3), so the reference server can play both.
type EqualPolicy int

const (
	// RejectEqual follows mpp-rs: an equal voucher adds no funds and is
	// rejected as delta-too-small.
	RejectEqual EqualPolicy = iota
	// IdempotentEqual follows the spec and mppx: an equal voucher is a retry;
	// it succeeds with the state unchanged and Result.Idempotent set.
	IdempotentEqual
)

func (p EqualPolicy) String() string {
	switch p {
	case RejectEqual:
		return "RejectEqual"
	case IdempotentEqual:
		return "IdempotentEqual"
	}
	return fmt.Sprintf("EqualPolicy(%d)", int(p))
}

// Options tune voucher acceptance for all channels of a Store.
type Options struct {
	MinDelta *big.Int // minVoucherDelta; nil means 0
	Equal    EqualPolicy
	// RacyCharge is a deliberate defect, for the server's racy-charge
	// mutant: Charge checks the balance for the last unit it covers and
	// deducts it in two critical sections, so charges on one channel at
	// once can spend the same funds.
	RacyCharge bool
	// IgnoreDeposit is a deliberate defect, for the server's
	// accept-over-deposit mutant: Accept takes vouchers above the deposit.
	IgnoreDeposit bool
}

// Voucher is a voucher whose signature the caller has already checked for
// well-formedness and recovered the signer from.
type Voucher struct {
	ChannelID tempo.Hash
	Amount    *big.Int // cumulative amount
	Signer    tempo.Address
	Signature []byte
}

// Result is the outcome of an accepted voucher.
type Result struct {
	State State
	// Idempotent is set when the voucher equalled the accepted amount under
	// IdempotentEqual: nothing changed and no waiter was woken.
	Idempotent bool
}

// Store holds the accounting of a fixed set of channels. It is safe for
// concurrent use and linearizable per channel. The channel set never changes
// after NewStore, so lookups take no lock and each channel has its own mutex:
// sessions on different channels never contend.
type Store struct {
	channels map[tempo.Hash]*entry
	minDelta big.Int
	equal    EqualPolicy
	racy     bool
	overdraw bool // IgnoreDeposit
}

type entry struct {
	desc   tempo.Channel // read-only; Deposit is a private copy
	signer tempo.Address

	mu        sync.Mutex
	deposit   big.Int
	accepted  big.Int
	signature []byte
	spent     big.Int
	units     uint64
	finalized bool
	// changed is closed and dropped at the next change. It is created only
	// when someone waits, so the charge hot path does not allocate it.
	changed chan struct{}
	racer   chan struct{} // RacyCharge: a charge waiting in the gap
	scratch big.Int       // avoids an allocation per comparison
}

// NewStore registers pre-opened channels with nothing accepted or spent yet.
// Deposits and MinDelta are copied, so the caller may reuse its values.
func NewStore(channels []tempo.Channel, opts Options) (*Store, error) {
	s := &Store{channels: make(map[tempo.Hash]*entry, len(channels)), equal: opts.Equal, racy: opts.RacyCharge, overdraw: opts.IgnoreDeposit}
	switch opts.Equal {
	case RejectEqual, IdempotentEqual:
	default:
		return nil, fmt.Errorf("channel: unknown equal policy %v", opts.Equal)
	}
	if opts.MinDelta != nil {
		if opts.MinDelta.Sign() < 0 {
			return nil, fmt.Errorf("channel: negative MinDelta %s", opts.MinDelta)
		}
		s.minDelta.Set(opts.MinDelta)
	}
	for _, c := range channels {
		if _, dup := s.channels[c.ID]; dup {
			return nil, fmt.Errorf("channel: duplicate channel %s", c.ID)
		}
		if c.Deposit == nil || c.Deposit.Sign() < 0 {
			return nil, fmt.Errorf("channel %s: deposit must be set and non-negative, got %v", c.ID, c.Deposit)
		}
		e := &entry{desc: c, signer: c.Signer()}
		e.desc.Deposit = new(big.Int).Set(c.Deposit)
		e.deposit.Set(c.Deposit)
		s.channels[c.ID] = e
	}
	return s, nil
}

// Channel returns the descriptor of a registered channel.
func (s *Store) Channel(id tempo.Hash) (tempo.Channel, bool) {
	e, ok := s.channels[id]
	if !ok {
		return tempo.Channel{}, false
	}
	return e.descriptor(), true
}

// State returns a snapshot of the channel's accounting.
func (s *Store) State(id tempo.Hash) (State, error) {
	e, err := s.lookup(id)
	if err != nil {
		return State{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snapshot(), nil
}

// Accept applies the voucher acceptance rules of protocol.md §6.6 atomically,
// in this order:
//   - unknown channel: ErrChannelNotFound;
//   - amount > deposit: ErrExceedsDeposit (checked first, as mppx does);
//   - signer is not the channel signer: ErrWrongSigner;
//   - amount < accepted: ErrNotIncreasing (verification-failed, as mppx);
//   - amount == accepted: rejected as ErrDeltaTooSmall or an idempotent
//     success, per Options.Equal;
//   - amount - accepted < MinDelta: ErrDeltaTooSmall;
//   - otherwise the amount and signature become the accepted voucher and
//     waiters are woken.
//
// A rejected voucher leaves the state unchanged.
func (s *Store) Accept(v Voucher) (Result, error) {
	e, err := s.lookup(v.ChannelID)
	if err != nil {
		return Result{}, err
	}
	if v.Amount == nil {
		return Result{}, newError(ErrInvalidAmount, ProblemVerificationFailed, "voucher has no amount")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.open(); err != nil {
		return Result{}, err
	}
	if v.Amount.Cmp(&e.deposit) > 0 && !s.overdraw {
		return Result{}, newError(ErrExceedsDeposit, ProblemExceedsDeposit,
			"voucher %s exceeds deposit %s", v.Amount, &e.deposit)
	}
	if v.Signer != e.signer {
		return Result{}, newError(ErrWrongSigner, ProblemInvalidSignature,
			"voucher signed by %s, channel signer is %s", v.Signer, e.signer)
	}
	switch v.Amount.Cmp(&e.accepted) {
	case -1:
		return Result{}, newError(ErrNotIncreasing, ProblemVerificationFailed,
			"voucher %s is below accepted %s", v.Amount, &e.accepted)
	case 0:
		if s.equal == IdempotentEqual {
			return Result{State: e.snapshot(), Idempotent: true}, nil
		}
		return Result{}, newError(ErrDeltaTooSmall, ProblemDeltaTooSmall,
			"voucher %s does not add new funds (accepted %s)", v.Amount, &e.accepted)
	}
	if s.minDelta.Sign() > 0 {
		delta := e.scratch.Sub(v.Amount, &e.accepted)
		if delta.Cmp(&s.minDelta) < 0 {
			return Result{}, newError(ErrDeltaTooSmall, ProblemDeltaTooSmall,
				"voucher delta %s is below minimum %s", delta, &s.minDelta)
		}
	}
	e.accepted.Set(v.Amount)
	e.signature = bytes.Clone(v.Signature)
	e.notify()
	return Result{State: e.snapshot()}, nil
}

// Charge deducts cost from the channel atomically (protocol.md §6.8): when
// the available amount covers it, spent grows by cost and units by one.
//
// Otherwise it returns ErrInsufficientBalance with the state unchanged, the
// snapshot the check saw (to build need-voucher), and a channel closed when
// the channel next gains funds. That channel is taken under the same lock as the
// failed check, so a voucher accepted right after the check still wakes the
// caller: no wake-up can be lost between "not enough" and "wait".
// On success the returned channel is nil.
func (s *Store) Charge(id tempo.Hash, cost *big.Int) (State, <-chan struct{}, error) {
	e, err := s.lookup(id)
	if err != nil {
		return State{}, nil, err
	}
	if cost == nil || cost.Sign() < 0 {
		return State{}, nil, newError(ErrInvalidAmount, ProblemVerificationFailed, "invalid cost %v", cost)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.open(); err != nil {
		return State{}, nil, err
	}
	available := e.scratch.Sub(&e.accepted, &e.spent)
	if available.Cmp(cost) < 0 {
		return e.snapshot(), e.wait(), newError(ErrInsufficientBalance, ProblemInsufficientBalance,
			"requested %s, available %s", cost, available)
	}
	if s.racy && new(big.Int).Sub(available, cost).Cmp(cost) < 0 {
		e.race()
	}
	e.spent.Add(&e.spent, cost)
	e.units++
	// No wake-up: a charge takes funds, and waiters only wait for funds.
	// Waking them on every unit would make k streams paused on one channel
	// cost O(k) wake-ups per delivered unit.
	return e.snapshot(), nil, nil
}

// Changed returns a channel closed when the channel next gains funds: an
// Accept that raises the accepted amount, or a TopUp.
func (s *Store) Changed(id tempo.Hash) (<-chan struct{}, error) {
	e, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.wait(), nil
}

// TopUp raises the channel's deposit to newDeposit, which must be greater
// than the current deposit (protocol.md §6.11), and wakes waiters.
func (s *Store) TopUp(id tempo.Hash, newDeposit *big.Int) (State, error) {
	e, err := s.lookup(id)
	if err != nil {
		return State{}, err
	}
	if newDeposit == nil {
		return State{}, newError(ErrInvalidAmount, ProblemVerificationFailed, "top-up has no deposit")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.open(); err != nil {
		return State{}, err
	}
	if newDeposit.Cmp(&e.deposit) <= 0 {
		return State{}, newError(ErrDepositNotRaised, ProblemVerificationFailed,
			"new deposit %s does not exceed deposit %s", newDeposit, &e.deposit)
	}
	e.deposit.Set(newDeposit)
	e.notify()
	return e.snapshot(), nil
}

// Close settles and finalizes the channel with a close voucher for amount,
// already verified by the caller as signed by the channel signer. The amount
// must cover what was spent (the payee captures spent, never more than was
// delivered) and stay within the deposit (protocol.md §6.10). Waiters wake
// and find the channel closed.
func (s *Store) Close(id tempo.Hash, amount *big.Int) (State, error) {
	e, err := s.lookup(id)
	if err != nil {
		return State{}, err
	}
	if amount == nil {
		return State{}, newError(ErrInvalidAmount, ProblemVerificationFailed, "close has no amount")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.open(); err != nil {
		return State{}, err
	}
	if amount.Cmp(&e.spent) < 0 {
		return State{}, newError(ErrNotIncreasing, ProblemVerificationFailed,
			"close amount %s is below spent %s", amount, &e.spent)
	}
	if amount.Cmp(&e.deposit) > 0 {
		return State{}, newError(ErrExceedsDeposit, ProblemExceedsDeposit,
			"close amount %s exceeds deposit %s", amount, &e.deposit)
	}
	e.finalized = true
	e.notify()
	return e.snapshot(), nil
}

func (s *Store) lookup(id tempo.Hash) (*entry, error) {
	e, ok := s.channels[id]
	if !ok {
		return nil, newError(ErrChannelNotFound, ProblemChannelNotFound, "channel %s not found", id)
	}
	return e, nil
}

// open refuses operations on a finalized channel; e.mu must be held.
func (e *entry) open() error {
	if e.finalized {
		return newError(ErrChannelFinalized, ProblemChannelFinalized, "channel %s is closed", e.desc.ID)
	}
	return nil
}

func (e *entry) descriptor() tempo.Channel {
	d := e.desc
	d.Deposit = new(big.Int).Set(e.desc.Deposit)
	return d
}

// snapshot copies the state; e.mu must be held. The four amounts share one
// allocation because every charge takes a snapshot.
func (e *entry) snapshot() State {
	v := new([4]big.Int)
	d := e.desc
	d.Deposit = v[0].Set(e.desc.Deposit)
	return State{
		Channel:   d,
		Deposit:   v[1].Set(&e.deposit),
		Accepted:  v[2].Set(&e.accepted),
		Signature: bytes.Clone(e.signature),
		Spent:     v[3].Set(&e.spent),
		Units:     e.units,
		Finalized: e.finalized,
	}
}

// race is RacyCharge's defect: the last unit is deducted in a second
// critical section, and the gap stays open until a second charge has passed
// the same check, or for 100 ms: two connections metering one channel at
// once charge far closer together than that (microseconds; still well
// within it on a loaded -race build), so both take it, and a lone
// connection only waits. e.mu is held on entry and on return.
func (e *entry) race() {
	if e.racer != nil { // the second charge: both deduct
		close(e.racer)
		e.racer = nil
		return
	}
	r := make(chan struct{})
	e.racer = r
	e.mu.Unlock()
	select {
	case <-r:
	case <-time.After(100 * time.Millisecond):
	}
	e.mu.Lock()
	if e.racer == r {
		e.racer = nil
	}
}

// Refund takes amount off the channel's spent total and wakes waiters. Only
// the server's refund-on-drop mutant uses it: a correct server never gives
// back a unit it charged (protocol.md §6.8).
func (s *Store) Refund(id tempo.Hash, amount *big.Int) error {
	e, err := s.lookup(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spent.Sub(&e.spent, amount)
	if e.spent.Sign() < 0 {
		e.spent.SetInt64(0)
	}
	e.notify()
	return nil
}

// wait returns the channel the next notify closes; e.mu must be held.
func (e *entry) wait() <-chan struct{} {
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

// notify wakes every waiter of the current generation; e.mu must be held.
func (e *entry) notify() {
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}
