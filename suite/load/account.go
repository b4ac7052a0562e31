package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/mppws/conformance/fixtures"
	"github.com/mppws/conformance/reference/tempo"
)

// account is load's side of one fixture channel, shared by every session
// that pays from it. The target meters the channel, not the connection:
// a voucher sent on one connection may be spent on another, so the
// invariants are checked here, over all of them.
type account struct {
	ch     fixtures.Channel
	tick   *big.Int
	step   *big.Int // what one voucher adds: tick × voucher units
	source string
	desc   *tempo.Descriptor // v2 only
	// slot is the channel's one voucher in flight. A session takes it
	// before signing; it is freed once a frame on any connection of the
	// channel reports the voucher accepted (dialect A acknowledges none),
	// or the voucher's connection gets refused or ends. Vouchers,
	// cumulative and strictly increasing, so reach the target in order: a
	// lower one landing after a higher one would be refused.
	slot     chan struct{}
	sessions int

	mu       sync.Mutex
	signed   big.Int  // highest cumulative amount signed
	accepted big.Int  // highest acceptedCumulative the target reported
	inflight *big.Int // the voucher holding the slot

	// paid is signed / tick: the messages the signed vouchers pay for,
	// since the target starts fresh. The vouchers signed bound what the
	// target can have accepted, whatever it says.
	paid      atomic.Uint64
	delivered atomic.Uint64 // messages that arrived, on every connection
	vouchers  atomic.Uint64
}

var errExhausted = errors.New("channel exhausted: the vouchers signed reach its deposit")

func newAccount(ch fixtures.Channel, tick *big.Int, units int) *account {
	a := &account{
		ch:     ch,
		tick:   tick,
		step:   new(big.Int).Mul(tick, big.NewInt(int64(units))),
		source: fmt.Sprintf("did:pkh:eip155:%d:%s", ch.ChainID, ch.Payer),
		slot:   make(chan struct{}, 1),
	}
	if ch.Protocol == tempo.V2 {
		d := tempo.DescriptorOf(ch.Channel)
		a.desc = &d
	}
	return a
}

// next reserves the next cumulative amount for the caller, who has just
// taken the slot: one step above everything signed, at least required, at
// most the deposit. The amount holds the slot and counts as paid from here
// on, before it is sent. On error the slot is free again.
func (a *account) next(required *big.Int) (*big.Int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	amount := new(big.Int).Add(&a.signed, a.step)
	if required != nil && required.Cmp(amount) > 0 {
		amount.Set(required)
	}
	if amount.Cmp(a.ch.Deposit) > 0 {
		amount.Set(a.ch.Deposit)
	}
	if amount.Cmp(&a.signed) <= 0 || (required != nil && amount.Cmp(required) < 0) {
		<-a.slot
		return nil, fmt.Errorf("%s: %w (%s signed, deposit %s)", a.ch.Name, errExhausted, &a.signed, a.ch.Deposit)
	}
	a.signed.Set(amount)
	a.inflight = amount
	a.paid.Store(new(big.Int).Quo(amount, a.tick).Uint64())
	a.vouchers.Add(1)
	return amount, nil
}

// abort frees a slot taken without a voucher to send.
func (a *account) abort() { <-a.slot }

// release frees the slot if amount is still the voucher in flight: it
// landed, was refused, or its connection ended.
func (a *account) release(amount *big.Int) {
	if amount == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight != nil && a.inflight.Cmp(amount) == 0 {
		a.inflight = nil
		<-a.slot
	}
}

// payload signs the voucher for amount.
func (a *account) payload(amount *big.Int) (json.RawMessage, error) {
	sig, err := tempo.SignVoucher(a.ch.SignerKey, a.ch.Domain(), a.ch.ID, amount)
	if err != nil {
		return nil, fmt.Errorf("sign voucher: %w", err)
	}
	return json.Marshal(tempo.VoucherPayload{
		Action:           "voucher",
		ChannelID:        a.ch.ID.String(),
		CumulativeAmount: amount.String(),
		Signature:        tempo.FormatSignature(sig),
		Descriptor:       a.desc,
	})
}

// deliver counts one message that arrived and reports the shortfall if
// the channel's messages now exceed what its signed vouchers pay for.
// Counting before reading paid keeps it sound: a voucher is counted as
// paid before it is sent, so before anything it pays for can arrive.
func (a *account) deliver() (delivered, paid uint64, over bool) {
	delivered = a.delivered.Add(1)
	paid = a.paid.Load()
	return delivered, paid, delivered > paid
}

// observe takes an acceptedCumulative the target reported: it frees the
// slot if it covers the voucher in flight, and it cannot exceed what was
// signed.
func (a *account) observe(accepted *big.Int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if accepted.Cmp(&a.signed) > 0 {
		return fmt.Errorf("acceptedCumulative %s exceeds the highest voucher signed on the channel, %s", accepted, &a.signed)
	}
	if accepted.Cmp(&a.accepted) > 0 {
		a.accepted.Set(accepted)
	}
	if a.inflight != nil && accepted.Cmp(a.inflight) >= 0 {
		a.inflight = nil
		<-a.slot
	}
	return nil
}

// result reports the channel.
func (a *account) result() Channel {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Channel{
		Name: a.ch.Name, ID: a.ch.ID.String(), Sessions: a.sessions,
		Delivered: a.delivered.Load(), Vouchers: a.vouchers.Load(),
		Signed: a.signed.String(), Accepted: a.accepted.String(),
	}
}
