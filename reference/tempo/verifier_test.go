package tempo

import (
	"bytes"
	"errors"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// sameResult fails unless Verify is nil exactly when RecoverVoucherSigner
// returns want, and otherwise returns the error VerifyVoucher would: the same
// text, hence the same sentinels.
func sameResult(t testing.TB, v *Verifier, d Domain, id Hash, amount *big.Int, sig []byte, want Address) error {
	t.Helper()
	got := v.Verify(d, id, amount, sig, want)
	rec, ref := RecoverVoucherSigner(d, id, amount, sig)
	if ref == nil && rec != want {
		ref = wrongSigner(rec, want)
	}
	if (got == nil) != (ref == nil) || (got != nil && got.Error() != ref.Error()) {
		t.Fatalf("sig %x want %s: Verify = %v, RecoverVoucherSigner = %s, %v", sig, want, got, rec, ref)
	}
	return got
}

func TestVerifierVectors(t *testing.T) {
	signer := mustAddr(t, anvilAddr0)
	var v Verifier
	first := true // the first success builds the table, for both domains
	for _, path := range []string{"first use", "warm"} {
		for _, vec := range vectors(t) {
			if built := v.table(signer) != nil; built == first {
				t.Fatalf("%s %s: table built = %v", vec.name, path, built)
			}
			sig, err := ParseSignature(vec.sig)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameResult(t, &v, vec.domain, oneHash(), big.NewInt(1_000_000), sig, signer); err != nil {
				t.Errorf("%s %s: %v", vec.name, path, err)
			}
			first = false
		}
	}
}

func TestSignerTableMul(t *testing.T) {
	key := mustKey(t, anvilKey1)
	var q secp256k1.JacobianPoint
	key.PubKey().AsJacobian(&q)
	table := newSignerTable(key.PubKey())

	n := secp256k1.S256().N
	scalars := []*big.Int{
		big.NewInt(1), big.NewInt(2), big.NewInt(127), big.NewInt(128), big.NewInt(129),
		big.NewInt(255), big.NewInt(256), big.NewInt(0x8080), big.NewInt(0xffff),
		new(big.Int).Sub(n, big.NewInt(1)), new(big.Int).Sub(n, big.NewInt(128)),
		new(big.Int).Lsh(big.NewInt(1), 255), new(big.Int).SetBytes(bytes.Repeat([]byte{0x80}, 32)),
		new(big.Int).SetBytes(bytes.Repeat([]byte{0x7f}, 32)),
	}
	rng := rand.NewChaCha8([32]byte{'m'})
	for range 100 {
		b := make([]byte, 32)
		rng.Read(b)
		scalars = append(scalars, new(big.Int).Mod(new(big.Int).SetBytes(b), n))
	}
	for _, k := range scalars {
		if k.Sign() == 0 {
			continue
		}
		var s secp256k1.ModNScalar
		s.SetByteSlice(k.Bytes())
		var got, want secp256k1.JacobianPoint // got starts at infinity
		table.addMul(&s, &got)
		secp256k1.ScalarMultNonConst(&s, &q, &want)
		if !got.EquivalentNonConst(&want) {
			t.Fatalf("table multiplication by %x differs from ScalarMultNonConst", k)
		}
	}
}

// TestVerifierInfinity uses a digest chosen so that u1·G + u2·Q is the point
// at infinity, which no voucher digest can be made to hit on purpose.
func TestVerifierInfinity(t *testing.T) {
	key := mustKey(t, anvilKey0)
	sig, err := SignVoucher(key, Domain{Protocol: V2}, oneHash(), big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	var r, e secp256k1.ModNScalar
	r.SetByteSlice(sig[:32])
	e.Mul2(&r, &key.Key).Negate() // e = −r·k, so e·s⁻¹·G + r·s⁻¹·Q = ∞
	digest := Hash(e.Bytes())
	if newSignerTable(key.PubKey()).verifies(&digest, sig) {
		t.Fatal("the point at infinity was accepted as R")
	}
	if pub, err := recoverPublicKey(&digest, sig); err == nil && pub.IsEqual(key.PubKey()) {
		t.Fatal("recovery disagrees: it yields the key")
	}
}

// notOnCurve returns an r below N that is no curve point's x coordinate.
func notOnCurve(rng *rand.ChaCha8) []byte {
	for {
		r := make([]byte, 32)
		rng.Read(r)
		var s secp256k1.ModNScalar
		var x, y secp256k1.FieldVal
		x.SetByteSlice(r)
		if !s.SetByteSlice(r) && !secp256k1.DecompressY(&x, false, &y) {
			return r
		}
	}
}

func randomKey(t testing.TB, rng *rand.ChaCha8) *secp256k1.PrivateKey {
	k, err := secp256k1.GeneratePrivateKeyFromRand(rng)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifierDifferential(t *testing.T) {
	const cases = 2400
	rng := rand.NewChaCha8([32]byte{'t', 'e', 'm', 'p', 'o'})
	keys := make([]*secp256k1.PrivateKey, 6)
	addrs := make([]Address, len(keys))
	for i := range keys {
		keys[i] = randomKey(t, rng)
		addrs[i] = AddressOf(keys[i].PubKey())
	}
	n := secp256k1.S256().N
	random32 := func() []byte { b := make([]byte, 32); rng.Read(b); return b }
	intn := func(k int) int { return int(rng.Uint64() % uint64(k)) }

	var v Verifier
	var accepted, fast, rejectedWithTable int
	kinds := make(map[string]int)
	for i := range cases {
		d := Domain{Protocol: V1, ChainID: rng.Uint64()}
		if intn(2) == 1 {
			d.Protocol = V2
		}
		rng.Read(d.VerifyingContract[:])
		var id Hash
		rng.Read(id[:])
		amount := new(big.Int).SetBytes(random32())
		amount.Rsh(amount, uint(256-d.Protocol.amountBits()+intn(d.Protocol.amountBits())))
		k := intn(len(keys))
		want := addrs[k]
		sig, err := SignVoucher(keys[k], d, id, amount)
		if err != nil {
			t.Fatal(err)
		}

		kind := []string{"valid", "valid", "valid", "flipped v", "high s", "random r/s",
			"random low s", "wrong want", "r ≥ N", "s = 0", "r off curve", "other key",
			"wrong amount", "unknown want"}[i%14]
		kinds[kind]++
		switch kind {
		case "flipped v":
			sig[64] ^= 27 ^ 28
		case "high s":
			sig = highS(sig)
		case "random r/s":
			rng.Read(sig[:64])
			sig[64] = byte(27 + intn(2))
		case "random low s": // a real key recovers, just not want's
			s := new(big.Int).SetBytes(random32())
			s.Mod(s, new(big.Int).Rsh(n, 1)).Add(s, big.NewInt(1)).FillBytes(sig[32:64])
		case "wrong want":
			want = addrs[(k+1+intn(len(keys)-1))%len(keys)]
		case "r ≥ N":
			new(big.Int).Add(n, new(big.Int).SetUint64(rng.Uint64())).FillBytes(sig[:32])
		case "s = 0":
			clear(sig[32:64])
		case "r off curve":
			copy(sig[:32], notOnCurve(rng))
		case "other key":
			if sig, err = SignVoucher(keys[(k+1)%len(keys)], d, id, amount); err != nil {
				t.Fatal(err)
			}
		case "wrong amount":
			amount.Xor(amount, big.NewInt(1))
		case "unknown want":
			rng.Read(want[:])
		}

		withTable := v.table(want) != nil
		if err := sameResult(t, &v, d, id, amount, sig, want); err == nil {
			accepted++
			if withTable {
				fast++
			}
		} else if withTable {
			rejectedWithTable++
		}
	}
	t.Logf("%d cases %v: %d accepted (%d by table), %d rejected with a table", cases, kinds, accepted, fast, rejectedWithTable)
	if accepted-fast < len(keys) || fast < cases/10 || rejectedWithTable < cases/4 {
		t.Errorf("paths not all covered: %d accepted (%d by table), %d rejected with a table", accepted, fast, rejectedWithTable)
	}
	if got := v.builds.Load(); got != int64(len(keys)) {
		t.Errorf("%d tables built for %d keys", got, len(keys))
	}
}

func TestVerifierConcurrentFirstUse(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'c'})
	key := randomKey(t, rng)
	signer := AddressOf(key.PubKey())
	d := Domain{Protocol: V2, ChainID: 4217}
	sigs := make([][]byte, 8)
	for i := range sigs {
		var err error
		if sigs[i], err = SignVoucher(key, d, oneHash(), big.NewInt(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	v := NewVerifier(0)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i, sig := range sigs {
				if err := v.Verify(d, oneHash(), big.NewInt(int64(i)), sig, signer); err != nil {
					t.Errorf("goroutine %d voucher %d: %v", g, i, err)
				}
				bad := bytes.Clone(sig)
				bad[64] ^= 27 ^ 28
				if err := v.Verify(d, oneHash(), big.NewInt(int64(i)), bad, signer); !errors.Is(err, ErrWrongSigner) && !errors.Is(err, ErrNoPublicKey) {
					t.Errorf("goroutine %d flipped voucher %d: %v", g, i, err)
				}
			}
		})
	}
	wg.Wait()
	if got := v.builds.Load(); got != 1 {
		t.Errorf("table built %d times", got)
	}
	if v.table(signer) == nil {
		t.Error("no table after the first uses")
	}
}

func TestVerifierEviction(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{'e'})
	d := Domain{Protocol: V1, ChainID: 42431}
	v := NewVerifier(2)
	var addrs []Address
	verify := func(k *secp256k1.PrivateKey) {
		t.Helper()
		sig, err := SignVoucher(k, d, oneHash(), big.NewInt(7))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(d, oneHash(), big.NewInt(7), sig, AddressOf(k.PubKey())); err != nil {
			t.Fatal(err)
		}
	}
	var keys []*secp256k1.PrivateKey
	for range 3 {
		k := randomKey(t, rng)
		keys = append(keys, k)
		addrs = append(addrs, AddressOf(k.PubKey()))
	}
	verify(keys[0])
	verify(keys[1])
	verify(keys[0]) // now keys[1] is the least recently used
	verify(keys[2])
	if v.table(addrs[1]) != nil || v.table(addrs[0]) == nil || v.table(addrs[2]) == nil || len(v.signers) != 2 {
		t.Fatalf("after eviction: %d signers, tables %v %v %v", len(v.signers),
			v.table(addrs[0]) != nil, v.table(addrs[1]) != nil, v.table(addrs[2]) != nil)
	}
	verify(keys[1]) // by recovery again, then rebuilt
	if got := v.builds.Load(); got != 4 {
		t.Errorf("%d tables built, want 4", got)
	}
}

func FuzzVerifier(f *testing.F) {
	key := mustKey(f, anvilKey0)
	signer := AddressOf(key.PubKey())
	other := AddressOf(mustKey(f, anvilKey1).PubKey())
	v := NewVerifier(0)
	for _, vec := range vectors(f) {
		sig, _ := ParseSignature(vec.sig)
		if err := v.Verify(vec.domain, oneHash(), big.NewInt(1_000_000), sig, signer); err != nil {
			f.Fatal(err) // warms the table: fuzzing exercises the fast path
		}
		flipped := bytes.Clone(sig)
		flipped[64] ^= 27 ^ 28
		f.Add(sig, uint64(1_000_000), vec.domain.Protocol == V2, false)
		f.Add(sig, uint64(1_000_000), vec.domain.Protocol == V2, true)
		f.Add(highS(sig), uint64(1_000_000), vec.domain.Protocol == V2, false)
		f.Add(flipped, uint64(1_000_000), vec.domain.Protocol == V2, false)
		f.Add(sig[:64], uint64(1_000_000), vec.domain.Protocol == V2, false)
	}
	offCurve := append(notOnCurve(rand.NewChaCha8([32]byte{})), bytes.Repeat([]byte{1}, 32)...)
	f.Add(append(offCurve, 27), uint64(0), true, false)
	f.Add(bytes.Repeat([]byte{0xff}, 65), uint64(0), true, false)
	f.Add(make([]byte, 65), uint64(0), false, false)

	vecs := vectors(f)
	f.Fuzz(func(t *testing.T, sig []byte, amount uint64, v2, wantOther bool) {
		d := vecs[0].domain
		if v2 {
			d = vecs[1].domain
		}
		want := signer
		if wantOther {
			want = other
		}
		sameResult(t, v, d, oneHash(), new(big.Int).SetUint64(amount), sig, want)
	})
}

// benchVoucher is the §6.5 v2 voucher signed by the anvil key.
func benchVoucher(b *testing.B) (Domain, *big.Int, []byte, Address) {
	key := mustKey(b, anvilKey0)
	d := Domain{Protocol: V2, ChainID: 4217, VerifyingContract: mustAddr(b, "0x4d50500000000000000000000000000000000000")}
	amt := big.NewInt(1_000_000)
	sig, err := SignVoucher(key, d, oneHash(), amt)
	if err != nil {
		b.Fatal(err)
	}
	return d, amt, sig, AddressOf(key.PubKey())
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// BenchmarkVerifierFast is the steady state: the signer's table is built.
func BenchmarkVerifierFast(b *testing.B) {
	d, amt, sig, want := benchVoucher(b)
	var v Verifier
	if err := v.Verify(d, oneHash(), amt, sig, want); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(d, oneHash(), amt, sig, want); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkVerifierCold is a signer's first voucher: recovery, then the
// table build.
func BenchmarkVerifierCold(b *testing.B) {
	d, amt, sig, want := benchVoucher(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := new(Verifier).Verify(d, oneHash(), amt, sig, want); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkVerifierReject is a voucher signed by another key than the known
// signer's: the table check fails, then recovery names the signer.
func BenchmarkVerifierReject(b *testing.B) {
	d, amt, sig, want := benchVoucher(b)
	var v Verifier
	if err := v.Verify(d, oneHash(), amt, sig, want); err != nil {
		b.Fatal(err)
	}
	sig, err := SignVoucher(mustKey(b, anvilKey1), d, oneHash(), amt)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(d, oneHash(), amt, sig, want); !errors.Is(err, ErrWrongSigner) {
			b.Fatal("want ErrWrongSigner, got ", err)
		}
	}
	reportRate(b)
}
