package channel

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mppws/conformance/reference/tempo"
)

var (
	payer      = tempo.Address{0xaa}
	delegate   = tempo.Address{0xbb}
	stranger   = tempo.Address{0xcc}
	chanPayer  = tempo.Hash{1}       // signed by the payer
	chanDeleg  = tempo.Hash{2}       // signed by an authorized signer
	chanAbsent = tempo.Hash{0xff, 1} // never registered
)

// guard bounds every wait in these tests; it is a failure deadline, never a
// pacing sleep.
const guard = 5 * time.Second

func n(v int64) *big.Int { return big.NewInt(v) }

func testChannel(id tempo.Hash, deposit int64, signer tempo.Address) tempo.Channel {
	return tempo.Channel{
		ID:               id,
		Protocol:         tempo.V2,
		ChainID:          4217,
		Payer:            payer,
		Payee:            tempo.Address{0x11},
		AuthorizedSigner: signer,
		Deposit:          n(deposit),
	}
}

func newTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := NewStore([]tempo.Channel{
		testChannel(chanPayer, 100, tempo.Address{}),
		testChannel(chanDeleg, 100, delegate),
	}, opts)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

func voucher(id tempo.Hash, amount int64, signer tempo.Address) Voucher {
	return Voucher{ChannelID: id, Amount: n(amount), Signer: signer, Signature: []byte{byte(amount), 0x5a}}
}

func mustAccept(t testing.TB, s *Store, v Voucher) State {
	t.Helper()
	r, err := s.Accept(v)
	if err != nil {
		t.Fatalf("Accept(%s): %v", v.Amount, err)
	}
	return r.State
}

func mustState(t testing.TB, s *Store, id tempo.Hash) State {
	t.Helper()
	st, err := s.State(id)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

// checkProblem asserts err is an *Error for sentinel with the given slug and
// a detail containing detail.
func checkProblem(t *testing.T, err, sentinel error, problem, detail string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v, want %v", err, sentinel)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *channel.Error", err)
	}
	if pe.Problem != problem {
		t.Errorf("Problem = %q, want %q", pe.Problem, problem)
	}
	if !strings.Contains(pe.Detail, detail) {
		t.Errorf("Detail = %q, want it to contain %q", pe.Detail, detail)
	}
}

func sameState(t *testing.T, got, want State) {
	t.Helper()
	if got.Deposit.Cmp(want.Deposit) != 0 || got.Accepted.Cmp(want.Accepted) != 0 ||
		got.Spent.Cmp(want.Spent) != 0 || got.Units != want.Units ||
		string(got.Signature) != string(want.Signature) {
		t.Fatalf("state = %s, want %s", fmtState(got), fmtState(want))
	}
}

func fmtState(s State) string {
	return fmt.Sprintf("{deposit %v accepted %v spent %v units %d signature %x}",
		s.Deposit, s.Accepted, s.Spent, s.Units, s.Signature)
}

func TestAcceptRules(t *testing.T) {
	tests := []struct {
		name     string
		policy   EqualPolicy
		minDelta int64
		prior    []int64 // vouchers accepted first, in order
		v        Voucher

		wantErr      error // nil: accepted
		wantProblem  string
		wantDetail   string
		idempotent   bool
		wantAccepted int64
	}{
		{name: "first voucher", v: voucher(chanPayer, 10, payer), wantAccepted: 10},
		{name: "raising", prior: []int64{10}, v: voucher(chanPayer, 11, payer), wantAccepted: 11},
		{name: "exactly the deposit", prior: []int64{10}, v: voucher(chanPayer, 100, payer), wantAccepted: 100},
		{name: "authorized signer", v: voucher(chanDeleg, 10, delegate), wantAccepted: 10},
		{
			name: "unknown channel", v: voucher(chanAbsent, 10, payer),
			wantErr: ErrChannelNotFound, wantProblem: ProblemChannelNotFound, wantDetail: chanAbsent.String() + " not found",
		},
		{
			name: "over deposit", prior: []int64{10}, v: voucher(chanPayer, 101, payer),
			wantErr: ErrExceedsDeposit, wantProblem: ProblemExceedsDeposit, wantDetail: "voucher 101 exceeds deposit 100",
			wantAccepted: 10,
		},
		{
			name: "over deposit is checked before the signer", v: voucher(chanPayer, 101, stranger),
			wantErr: ErrExceedsDeposit, wantProblem: ProblemExceedsDeposit, wantDetail: "exceeds deposit",
		},
		{
			name: "wrong signer", v: voucher(chanPayer, 10, stranger),
			wantErr: ErrWrongSigner, wantProblem: ProblemInvalidSignature, wantDetail: stranger.String(),
		},
		{
			name: "payer instead of the authorized signer", v: voucher(chanDeleg, 10, payer),
			wantErr: ErrWrongSigner, wantProblem: ProblemInvalidSignature, wantDetail: delegate.String(),
		},
		{
			name: "decreasing", prior: []int64{10, 20}, v: voucher(chanPayer, 15, payer),
			wantErr: ErrNotIncreasing, wantProblem: ProblemVerificationFailed, wantDetail: "voucher 15 is below accepted 20",
			wantAccepted: 20,
		},
		{
			name: "decreasing with the wrong signer", prior: []int64{20}, v: voucher(chanPayer, 15, stranger),
			wantErr: ErrWrongSigner, wantProblem: ProblemInvalidSignature, wantDetail: "channel signer",
			wantAccepted: 20,
		},
		{
			name: "equal under RejectEqual", policy: RejectEqual, prior: []int64{20}, v: voucher(chanPayer, 20, payer),
			wantErr: ErrDeltaTooSmall, wantProblem: ProblemDeltaTooSmall, wantDetail: "does not add new funds",
			wantAccepted: 20,
		},
		{
			name: "equal under IdempotentEqual", policy: IdempotentEqual, prior: []int64{20}, v: voucher(chanPayer, 20, payer),
			idempotent: true, wantAccepted: 20,
		},
		{
			name: "equal under IdempotentEqual ignores MinDelta", policy: IdempotentEqual, minDelta: 5,
			prior: []int64{20}, v: voucher(chanPayer, 20, payer), idempotent: true, wantAccepted: 20,
		},
		{
			name: "zero first voucher under RejectEqual", v: voucher(chanPayer, 0, payer),
			wantErr: ErrDeltaTooSmall, wantProblem: ProblemDeltaTooSmall, wantDetail: "does not add new funds",
		},
		{
			name: "equal with the wrong signer", policy: IdempotentEqual, prior: []int64{20}, v: voucher(chanPayer, 20, stranger),
			wantErr: ErrWrongSigner, wantProblem: ProblemInvalidSignature, wantDetail: "channel signer", wantAccepted: 20,
		},
		{
			name: "below MinDelta", minDelta: 5, prior: []int64{10}, v: voucher(chanPayer, 14, payer),
			wantErr: ErrDeltaTooSmall, wantProblem: ProblemDeltaTooSmall, wantDetail: "voucher delta 4 is below minimum 5",
			wantAccepted: 10,
		},
		{
			name: "first voucher below MinDelta", minDelta: 5, v: voucher(chanPayer, 4, payer),
			wantErr: ErrDeltaTooSmall, wantProblem: ProblemDeltaTooSmall, wantDetail: "below minimum 5",
		},
		{name: "exactly MinDelta", minDelta: 5, prior: []int64{10}, v: voucher(chanPayer, 15, payer), wantAccepted: 15},
		{
			name: "nil amount", v: Voucher{ChannelID: chanPayer, Signer: payer},
			wantErr: ErrInvalidAmount, wantProblem: ProblemVerificationFailed, wantDetail: "no amount",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, Options{MinDelta: n(tt.minDelta), Equal: tt.policy})
			id := tt.v.ChannelID
			signer := payer
			if id == chanDeleg {
				signer = delegate
			}
			for _, a := range tt.prior {
				mustAccept(t, s, voucher(id, a, signer))
			}
			var before State
			if id != chanAbsent {
				before = mustState(t, s, id)
			}

			r, err := s.Accept(tt.v)

			if tt.wantErr != nil {
				checkProblem(t, err, tt.wantErr, tt.wantProblem, tt.wantDetail)
				if id != chanAbsent {
					sameState(t, mustState(t, s, id), before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if r.Idempotent != tt.idempotent {
				t.Errorf("Idempotent = %v, want %v", r.Idempotent, tt.idempotent)
			}
			if r.State.Accepted.Cmp(n(tt.wantAccepted)) != 0 {
				t.Errorf("Accepted = %s, want %d", r.State.Accepted, tt.wantAccepted)
			}
			after := mustState(t, s, id)
			sameState(t, after, r.State)
			if tt.idempotent {
				sameState(t, after, before) // the stored signature is the original one too
				return
			}
			if string(after.Signature) != string(tt.v.Signature) {
				t.Errorf("Signature = %x, want %x", after.Signature, tt.v.Signature)
			}
		})
	}
}

func TestChargeBoundary(t *testing.T) {
	s := newTestStore(t, Options{})
	mustAccept(t, s, voucher(chanPayer, 25, payer))

	st, wait, err := s.Charge(chanPayer, n(15))
	if err != nil || wait != nil {
		t.Fatalf("Charge(15) = %v, %v; want success", wait, err)
	}
	if st.Spent.Cmp(n(15)) != 0 || st.Units != 1 || st.Available().Cmp(n(10)) != 0 {
		t.Fatalf("after Charge(15): %s", fmtState(st))
	}

	// One above the available amount fails and changes nothing.
	before := mustState(t, s, chanPayer)
	seen, wait, err := s.Charge(chanPayer, n(11))
	checkProblem(t, err, ErrInsufficientBalance, ProblemInsufficientBalance, "requested 11, available 10")
	if wait == nil {
		t.Fatal("failed Charge returned no wait channel")
	}
	sameState(t, seen, before)
	sameState(t, mustState(t, s, chanPayer), before)

	// Exactly the available amount succeeds.
	st, wait, err = s.Charge(chanPayer, n(10))
	if err != nil || wait != nil {
		t.Fatalf("Charge(10) with 10 available = %v, %v; want success", wait, err)
	}
	if st.Spent.Cmp(n(25)) != 0 || st.Units != 2 || st.Available().Sign() != 0 {
		t.Fatalf("after Charge(10): %s", fmtState(st))
	}

	// A zero cost is covered by an empty balance and still counts a unit.
	if st, _, err = s.Charge(chanPayer, n(0)); err != nil || st.Units != 3 {
		t.Fatalf("Charge(0) = %s, %v", fmtState(st), err)
	}

	_, _, err = s.Charge(chanPayer, n(1))
	checkProblem(t, err, ErrInsufficientBalance, ProblemInsufficientBalance, "requested 1, available 0")
	_, _, err = s.Charge(chanPayer, n(-1))
	checkProblem(t, err, ErrInvalidAmount, ProblemVerificationFailed, "invalid cost")
	_, _, err = s.Charge(chanPayer, nil)
	checkProblem(t, err, ErrInvalidAmount, ProblemVerificationFailed, "invalid cost")
	_, _, err = s.Charge(chanAbsent, n(1))
	checkProblem(t, err, ErrChannelNotFound, ProblemChannelNotFound, "not found")
	if got := mustState(t, s, chanPayer); got.Units != 3 || got.Spent.Cmp(n(25)) != 0 {
		t.Fatalf("rejected charges changed the state: %s", fmtState(got))
	}
}

func TestTopUp(t *testing.T) {
	s := newTestStore(t, Options{})
	mustAccept(t, s, voucher(chanPayer, 100, payer))
	_, err := s.Accept(voucher(chanPayer, 150, payer))
	checkProblem(t, err, ErrExceedsDeposit, ProblemExceedsDeposit, "voucher 150 exceeds deposit 100")

	_, err = s.TopUp(chanPayer, n(100))
	checkProblem(t, err, ErrDepositNotRaised, ProblemVerificationFailed, "new deposit 100 does not exceed deposit 100")
	_, err = s.TopUp(chanPayer, n(50))
	checkProblem(t, err, ErrDepositNotRaised, ProblemVerificationFailed, "does not exceed")
	_, err = s.TopUp(chanPayer, nil)
	checkProblem(t, err, ErrInvalidAmount, ProblemVerificationFailed, "no deposit")
	_, err = s.TopUp(chanAbsent, n(500))
	checkProblem(t, err, ErrChannelNotFound, ProblemChannelNotFound, "not found")

	st, err := s.TopUp(chanPayer, n(200))
	if err != nil {
		t.Fatalf("TopUp(200): %v", err)
	}
	if st.Deposit.Cmp(n(200)) != 0 || st.Channel.Deposit.Cmp(n(100)) != 0 {
		t.Fatalf("after TopUp: deposit %s, descriptor deposit %s", st.Deposit, st.Channel.Deposit)
	}
	mustAccept(t, s, voucher(chanPayer, 150, payer))
}

func TestNewStore(t *testing.T) {
	c := testChannel(chanPayer, 100, tempo.Address{})
	noDeposit := c
	noDeposit.Deposit = nil
	negDeposit := c
	negDeposit.Deposit = n(-1)
	bad := []struct {
		name     string
		channels []tempo.Channel
		opts     Options
	}{
		{"duplicate id", []tempo.Channel{c, c}, Options{}},
		{"nil deposit", []tempo.Channel{noDeposit}, Options{}},
		{"negative deposit", []tempo.Channel{negDeposit}, Options{}},
		{"negative MinDelta", []tempo.Channel{c}, Options{MinDelta: n(-1)}},
		{"unknown policy", []tempo.Channel{c}, Options{Equal: EqualPolicy(7)}},
	}
	for _, tt := range bad {
		if _, err := NewStore(tt.channels, tt.opts); err == nil {
			t.Errorf("%s: NewStore succeeded", tt.name)
		}
	}

	s := newTestStore(t, Options{})
	got, ok := s.Channel(chanDeleg)
	if !ok || got.ID != chanDeleg || got.Signer() != delegate || got.Deposit.Cmp(n(100)) != 0 {
		t.Fatalf("Channel(chanDeleg) = %+v, %v", got, ok)
	}
	if _, ok := s.Channel(chanAbsent); ok {
		t.Fatal("Channel(absent) found")
	}
	st := mustState(t, s, chanPayer)
	if st.Accepted.Sign() != 0 || st.Spent.Sign() != 0 || st.Units != 0 || st.Signature != nil {
		t.Fatalf("fresh state = %s, signature %x", fmtState(st), st.Signature)
	}
	_, err := s.State(chanAbsent)
	checkProblem(t, err, ErrChannelNotFound, ProblemChannelNotFound, "not found")
	_, err = s.Changed(chanAbsent)
	checkProblem(t, err, ErrChannelNotFound, ProblemChannelNotFound, "not found")
}

func TestSnapshotsAreCopies(t *testing.T) {
	deposit, minDelta := n(100), n(1)
	s, err := NewStore([]tempo.Channel{{ID: chanPayer, Payer: payer, Deposit: deposit}}, Options{MinDelta: minDelta})
	if err != nil {
		t.Fatal(err)
	}
	deposit.SetInt64(1)
	minDelta.SetInt64(50)

	v := voucher(chanPayer, 40, payer)
	r, err := s.Accept(v)
	if err != nil {
		t.Fatal(err)
	}
	v.Amount.SetInt64(99)
	v.Signature[0] = 0xee
	cost := n(5)
	charged, _, err := s.Charge(chanPayer, cost)
	if err != nil {
		t.Fatal(err)
	}
	cost.SetInt64(1000)
	top := n(300)
	topped, err := s.TopUp(chanPayer, top)
	if err != nil {
		t.Fatal(err)
	}
	top.SetInt64(1)
	desc, _ := s.Channel(chanPayer)

	for _, st := range []State{r.State, charged, topped} {
		st.Deposit.SetInt64(-7)
		st.Accepted.SetInt64(-7)
		st.Spent.SetInt64(-7)
		st.Channel.Deposit.SetInt64(-7)
		st.Signature[0] = 0xee
	}
	desc.Deposit.SetInt64(-7)

	got := mustState(t, s, chanPayer)
	want := State{Deposit: n(300), Accepted: n(40), Spent: n(5), Units: 1, Signature: []byte{40, 0x5a}}
	sameState(t, got, want)
	if got.Channel.Deposit.Cmp(n(100)) != 0 {
		t.Fatalf("descriptor deposit = %s, want 100", got.Channel.Deposit)
	}
	if desc, _ := s.Channel(chanPayer); desc.Deposit.Cmp(n(100)) != 0 {
		t.Fatalf("Channel().Deposit = %s, want 100", desc.Deposit)
	}
	// MinDelta was copied at 1, not read back as 50.
	mustAccept(t, s, voucher(chanPayer, 41, payer))
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestWaitWakesOnAccept(t *testing.T) {
	s := newTestStore(t, Options{})
	_, wait, err := s.Charge(chanPayer, n(10))
	if !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("Charge on an empty channel: %v", err)
	}
	if closed(wait) {
		t.Fatal("wait channel closed before any change")
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := s.Accept(voucher(chanPayer, 10, payer))
		accepted <- err
	}()
	select {
	case <-wait:
	case <-time.After(guard):
		t.Fatal("waiter not woken by Accept on another goroutine")
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Charge(chanPayer, n(10)); err != nil {
		t.Fatalf("Charge after wake-up: %v", err)
	}
}

// TestChangedEvents checks which operations wake waiters: only new funds.
func TestChangedEvents(t *testing.T) {
	s := newTestStore(t, Options{Equal: IdempotentEqual})
	mustAccept(t, s, voucher(chanPayer, 20, payer))
	steps := []struct {
		name    string
		op      func() error
		changes bool
	}{
		{"idempotent voucher", func() error { _, err := s.Accept(voucher(chanPayer, 20, payer)); return err }, false},
		{"rejected voucher", func() error { _, _ = s.Accept(voucher(chanPayer, 10, payer)); return nil }, false},
		{"failed charge", func() error { _, _, _ = s.Charge(chanPayer, n(21)); return nil }, false},
		{"voucher on another channel", func() error { _, err := s.Accept(voucher(chanDeleg, 5, delegate)); return err }, false},
		{"raising voucher", func() error { _, err := s.Accept(voucher(chanPayer, 30, payer)); return err }, true},
		{"charge", func() error { _, _, err := s.Charge(chanPayer, n(1)); return err }, false},
		{"top-up", func() error { _, err := s.TopUp(chanPayer, n(200)); return err }, true},
	}
	for _, step := range steps {
		first, err := s.Changed(chanPayer)
		if err != nil {
			t.Fatal(err)
		}
		second, _ := s.Changed(chanPayer)
		if err := step.op(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if closed(first) != step.changes || closed(second) != step.changes {
			t.Errorf("%s: waiters woken = %v, %v; want %v", step.name, closed(first), closed(second), step.changes)
		}
	}
}

// TestNoLostWakeup races a consumer that charges, fails and waits against a
// producer that accepts the voucher it needs. If the wait channel were taken
// after the failed check instead of with it, an Accept landing in between
// would leave the consumer waiting for a change that already happened.
func TestNoLostWakeup(t *testing.T) {
	const iterations = 3000
	cost := n(1)
	s := newTestStore(t, Options{})
	if _, err := s.TopUp(chanPayer, new(big.Int).Lsh(n(1), 100)); err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= iterations; i++ {
		start := make(chan struct{})
		charged := make(chan error, 1)
		go func() {
			<-start
			for {
				_, wait, err := s.Charge(chanPayer, cost)
				if !errors.Is(err, ErrInsufficientBalance) {
					charged <- err
					return
				}
				<-wait
			}
		}()
		accepted := make(chan error, 1)
		go func() {
			<-start
			_, err := s.Accept(voucher(chanPayer, i, payer))
			accepted <- err
		}()
		close(start)
		if err := <-accepted; err != nil {
			t.Fatalf("iteration %d: Accept: %v", i, err)
		}
		select {
		case err := <-charged:
			if err != nil {
				t.Fatalf("iteration %d: Charge: %v", i, err)
			}
		case <-time.After(guard):
			t.Fatalf("iteration %d: charger never woke: lost wake-up", i)
		}
	}
	if st := mustState(t, s, chanPayer); st.Units != iterations || st.Spent.Cmp(n(iterations)) != 0 {
		t.Fatalf("final state %s, want %d units", fmtState(st), iterations)
	}
}

// TestConcurrentChargeAndAccept has chargers drain one channel while
// acceptors raise it. Every successful charge must be covered by an accepted
// voucher at the moment it happened and be counted exactly once.
func TestConcurrentChargeAndAccept(t *testing.T) {
	const (
		chargers  = 8
		acceptors = 4
		vouchers  = 500 // per acceptor
		step      = 7   // voucher increment; not a multiple of cost
		cost      = 3
	)
	s, err := NewStore([]tempo.Channel{testChannel(chanPayer, 1<<40, tempo.Address{})}, Options{})
	if err != nil {
		t.Fatal(err)
	}

	var (
		next        atomic.Int64 // voucher sequence
		maxAccepted atomic.Int64
		acceptWG    sync.WaitGroup
		acceptDone  = make(chan struct{})
	)
	for range acceptors {
		acceptWG.Go(func() {
			for range vouchers {
				amount := next.Add(1) * step
				r, err := s.Accept(voucher(chanPayer, amount, payer))
				switch {
				case errors.Is(err, ErrNotIncreasing):
					// Another acceptor's higher voucher landed first.
				case err != nil:
					t.Errorf("Accept(%d): %v", amount, err)
				default:
					if r.State.Accepted.Int64() != amount {
						t.Errorf("Accept(%d) returned accepted %s", amount, r.State.Accepted)
					}
					raise(&maxAccepted, amount)
				}
			}
		})
	}

	units := make([][]uint64, chargers) // units seen by each charger's successes
	var chargeWG sync.WaitGroup
	for c := range chargers {
		chargeWG.Go(func() {
			for {
				// A failure seen after the acceptors finished is final.
				final := closed(acceptDone)
				st, wait, err := s.Charge(chanPayer, n(cost))
				if err == nil {
					if st.Spent.Cmp(st.Accepted) > 0 || st.Spent.Int64() != int64(st.Units)*cost {
						t.Errorf("charge left %s", fmtState(st))
					}
					units[c] = append(units[c], st.Units)
					continue
				}
				if !errors.Is(err, ErrInsufficientBalance) {
					t.Errorf("Charge: %v", err)
					return
				}
				if final {
					return
				}
				select {
				case <-wait:
				case <-acceptDone: // retry once more, now knowing no voucher follows
				}
			}
		})
	}

	acceptWG.Wait()
	close(acceptDone)
	chargeWG.Wait()

	st := mustState(t, s, chanPayer)
	if st.Accepted.Int64() != maxAccepted.Load() {
		t.Errorf("accepted = %s, highest successful voucher %d", st.Accepted, maxAccepted.Load())
	}
	if st.Spent.Int64() != int64(st.Units)*cost {
		t.Errorf("spent %s != units %d * cost %d", st.Spent, st.Units, cost)
	}
	if st.Spent.Cmp(st.Accepted) > 0 {
		t.Errorf("spent %s beyond accepted %s", st.Spent, st.Accepted)
	}
	if st.Available().Cmp(n(cost)) >= 0 {
		t.Errorf("chargers stopped with %s still available", st.Available())
	}
	// Each success saw a distinct unit number, and together they are 1..Units.
	seen := make(map[uint64]bool)
	for _, us := range units {
		for _, u := range us {
			if seen[u] {
				t.Fatalf("unit %d counted twice", u)
			}
			seen[u] = true
		}
	}
	if uint64(len(seen)) != st.Units {
		t.Fatalf("%d successful charges, state counts %d units", len(seen), st.Units)
	}
	for u := uint64(1); u <= st.Units; u++ {
		if !seen[u] {
			t.Fatalf("unit %d missing", u)
		}
	}
	t.Logf("%d charges against accepted %s", st.Units, st.Accepted)
}

// raise sets m to max(m, v).
func raise(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func benchStore(b *testing.B) *Store {
	b.Helper()
	huge := new(big.Int).Lsh(n(1), 120)
	s, err := NewStore([]tempo.Channel{{ID: chanPayer, Payer: payer, Deposit: huge}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Accept(Voucher{ChannelID: chanPayer, Amount: huge, Signer: payer, Signature: make([]byte, 65)}); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkCharge(b *testing.B) {
	s, cost := benchStore(b), n(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Charge(chanPayer, cost); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChargeParallel(b *testing.B) {
	s, cost := benchStore(b), n(1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Charge(chanPayer, cost); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAccept(b *testing.B) {
	deposit := new(big.Int).Lsh(n(1), 120)
	s, err := NewStore([]tempo.Channel{{ID: chanPayer, Payer: payer, Deposit: deposit}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	v := Voucher{ChannelID: chanPayer, Amount: new(big.Int), Signer: payer, Signature: make([]byte, 65)}
	b.ReportAllocs()
	for b.Loop() {
		v.Amount.Add(v.Amount, n(1000))
		if _, err := s.Accept(v); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClose(t *testing.T) {
	s := newTestStore(t, Options{})
	mustAccept(t, s, voucher(chanPayer, 30, payer))
	if _, _, err := s.Charge(chanPayer, n(20)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Close(chanPayer, n(19)); !errors.Is(err, ErrNotIncreasing) {
		t.Fatalf("close below spent: %v", err)
	}
	if _, err := s.Close(chanPayer, n(101)); !errors.Is(err, ErrExceedsDeposit) {
		t.Fatalf("close over deposit: %v", err)
	}
	wait, _ := s.Changed(chanPayer)
	st, err := s.Close(chanPayer, n(20))
	if err != nil || !st.Finalized {
		t.Fatalf("close at spent: %s, %v", fmtState(st), err)
	}
	if !closed(wait) {
		t.Error("close did not wake waiters")
	}
	if _, err := s.Accept(voucher(chanPayer, 40, payer)); !errors.Is(err, ErrChannelFinalized) {
		t.Errorf("voucher after close: %v", err)
	}
	if _, _, err := s.Charge(chanPayer, n(1)); !errors.Is(err, ErrChannelFinalized) {
		t.Errorf("charge after close: %v", err)
	}
	if _, err := s.Close(chanPayer, n(20)); !errors.Is(err, ErrChannelFinalized) {
		t.Errorf("second close: %v", err)
	}
}

// TestRacyChargeOverdrawsOnlyUnderConcurrency pins the racy-charge mutant's
// defect: one charger never overdraws, two at once soon do.
func TestRacyChargeOverdrawsOnlyUnderConcurrency(t *testing.T) {
	s := newTestStore(t, Options{RacyCharge: true})
	mustAccept(t, s, voucher(chanPayer, 50, payer))
	for {
		if _, _, err := s.Charge(chanPayer, n(1)); err != nil {
			break
		}
	}
	if st := mustState(t, s, chanPayer); st.Spent.Int64() != 50 {
		t.Fatalf("a lone charger left %s, want spent 50", fmtState(st))
	}
	for round := int64(1); round <= 50; round++ {
		mustAccept(t, s, voucher(chanPayer, 50+round, payer))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 2 {
			wg.Go(func() {
				<-start
				s.Charge(chanPayer, n(1))
			})
		}
		close(start)
		wg.Wait()
		if st := mustState(t, s, chanPayer); st.Spent.Cmp(st.Accepted) > 0 {
			return
		}
	}
	t.Fatal("two concurrent charges never spent the same funds in 50 rounds")
}
