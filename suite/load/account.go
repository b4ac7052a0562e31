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
	// before signing and gives it back once the target has answered, so
	// vouchers, cumulative and strictly increasing, reach the target in
	// order: a lower one landing after a higher one would be refused.
	slot     chan struct{}
	sessions int

	mu       sync.Mutex
	signed   big.Int // highest cumulative amount signed
	accepted big.Int // highest acceptedCumulative the target reported

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

// next reserves the next cumulative amount: one step above everything
// signed, at least required, at most the deposit. The caller holds the
// slot. The amount counts as paid from here on, before it is sent.
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
		return nil, fmt.Errorf("%s: %w (%s signed, deposit %s)", a.ch.Name, errExhausted, &a.signed, a.ch.Deposit)
	}
	a.signed.Set(amount)
	a.paid.Store(new(big.Int).Quo(amount, a.tick).Uint64())
	a.vouchers.Add(1)
	return amount, nil
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

// signedAbove reports whether a voucher above amount has been signed.
func (a *account) signedAbove(amount *big.Int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.signed.Cmp(amount) > 0
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

// checkAccepted compares an acceptedCumulative the target reported with
// what was signed: it cannot have accepted more.
func (a *account) checkAccepted(accepted *big.Int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if accepted.Cmp(&a.signed) > 0 {
		return fmt.Errorf("acceptedCumulative %s exceeds the highest voucher signed on the channel, %s", accepted, &a.signed)
	}
	if accepted.Cmp(&a.accepted) > 0 {
		a.accepted.Set(accepted)
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
