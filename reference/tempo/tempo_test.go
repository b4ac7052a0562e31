package tempo

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Worked values from protocol.md §6.5.
const (
	anvilKey0  = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	anvilAddr0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	anvilKey1  = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
)

func mustAddr(t testing.TB, s string) Address {
	t.Helper()
	a, err := ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustKey(t testing.TB, s string) *secp256k1.PrivateKey {
	t.Helper()
	k, err := ParsePrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func repeatAddr(t testing.TB, digit string) Address {
	return mustAddr(t, "0x"+strings.Repeat(digit, 40))
}

func oneHash() Hash { var h Hash; h[31] = 1; return h }

type vector struct {
	name                               string
	domain                             Domain
	separator, structHash, digest, sig string
}

func vectors(t testing.TB) []vector {
	return []vector{
		{
			name:       "v1",
			domain:     Domain{Protocol: V1, ChainID: 42431, VerifyingContract: mustAddr(t, "0x1234567890abcdef1234567890abcdef12345678")},
			separator:  "0x8d821c6435c8f7ef229ad0319e8d84546c61ded79f75e03b4f87faadd1ccb936",
			structHash: "0xbd6e86024ae7ee02518729bdb49fa2de07a67ff5eba7e479dc34ceed8b5833dc",
			digest:     "0x6dc35eeff9b1012097be8391643663453bb2d7634f2fb92843f7a8a736969651",
			sig:        "0x166c624efa696993430d9dab5d2d7fd9232e6538eaa869a0645cc9c5b08e294968bba88da059e82a0cdcba85f0f54eeea347a802192def54a6ebbbf0510af7001c",
		},
		{
			name:       "v2",
			domain:     Domain{Protocol: V2, ChainID: 4217, VerifyingContract: mustAddr(t, "0x4d50500000000000000000000000000000000000")},
			separator:  "0x6465ffa0b0c1e7cfc1a894ba54d79615bc06fd7cc9cfec558f3df82189d17367",
			structHash: "0x3c2f8f44e34eaab4c40e8fe41105ade7e810f737de267266ea17ffca689ada13",
			digest:     "0x309b51c802d5a11dcdae563331a943b65c9ca6bafb674b6265d8aa661c0e0191",
			sig:        "0x700fb2081bb5f5990b16f5192a906df4e9542e57af8a70197a976d3bdc9ab9d84e6ebe4a887201c458589e0eaf18d8e907b1ebca5075ce0745069428a5c83cd61b",
		},
	}
}

func TestTypehashes(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  Hash
		want string
	}{
		{"EIP712Domain", domainTypehash, "0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f"},
		{"Voucher v1", voucherTypehashV1, "0xe97c93f01d3ef8eaba1586553df13308f236815bf4ea49c7b696895d8f5ea68a"},
		{"Voucher v2", voucherTypehashV2, "0x4730b4b2fe8de522475e80e010877c5b58ad10eb07fd0436615ee123f743bbe8"},
	} {
		if tc.got.String() != tc.want {
			t.Errorf("%s typehash = %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestKeccak256(t *testing.T) {
	// Well-known: keccak256("") and the concatenation property.
	if got := Keccak256().String(); got != "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470" {
		t.Errorf("keccak256(\"\") = %s", got)
	}
	if Keccak256([]byte("ab"), []byte("c")) != Keccak256([]byte("abc")) {
		t.Error("Keccak256 is not over the concatenation of its arguments")
	}
}

func TestAddressOfAnvilKey(t *testing.T) {
	key := mustKey(t, anvilKey0)
	if got, want := AddressOf(key.PubKey()), mustAddr(t, anvilAddr0); got != want {
		t.Fatalf("AddressOf = %s, want %s", got, want)
	}
	if !AddressOf(nil).IsZero() {
		t.Error("AddressOf(nil) is not the zero address")
	}
}

func TestVoucherVectors(t *testing.T) {
	key := mustKey(t, anvilKey0)
	signer := mustAddr(t, anvilAddr0)
	amount := big.NewInt(1_000_000)
	for _, v := range vectors(t) {
		t.Run(v.name, func(t *testing.T) {
			if got := v.domain.Separator().String(); got != v.separator {
				t.Errorf("separator = %s, want %s", got, v.separator)
			}
			sh, err := VoucherStructHash(v.domain.Protocol, oneHash(), amount)
			if err != nil || sh.String() != v.structHash {
				t.Errorf("structHash = %s, %v; want %s", sh, err, v.structHash)
			}
			dg, err := VoucherDigest(v.domain, oneHash(), amount)
			if err != nil || dg.String() != v.digest {
				t.Errorf("digest = %s, %v; want %s", dg, err, v.digest)
			}
			sig, err := SignVoucher(key, v.domain, oneHash(), amount)
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatSignature(sig); got != v.sig {
				t.Errorf("signature = %s, want %s", got, v.sig)
			}
			parsed, err := ParseSignature(v.sig)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyVoucher(v.domain, oneHash(), amount, parsed, signer); err != nil {
				t.Errorf("VerifyVoucher(spec signature): %v", err)
			}
		})
	}
}

func TestChannelIDVectors(t *testing.T) {
	base := Channel{
		Payer:   repeatAddr(t, "1"),
		Payee:   repeatAddr(t, "2"),
		ChainID: 42431,
		Salt:    oneHash(),
	}
	v1 := base
	v1.Protocol = V1
	v1.Token = repeatAddr(t, "3")
	v1.AuthorizedSigner = repeatAddr(t, "4")
	v1.Escrow = repeatAddr(t, "5")
	// v1 ignores the v2-only fields.
	v1.Operator = repeatAddr(t, "9")
	v1.ExpiringNonceHash = mustHash(t, "0x"+strings.Repeat("bb", 32))

	v2 := base
	v2.Protocol = V2
	v2.Operator = repeatAddr(t, "3")
	v2.Token = repeatAddr(t, "4")
	v2.AuthorizedSigner = repeatAddr(t, "5")
	v2.ExpiringNonceHash = mustHash(t, "0x"+strings.Repeat("aa", 32))
	v2.Escrow = mustAddr(t, "0x4d50500000000000000000000000000000000000")

	for _, tc := range []struct {
		name string
		c    Channel
		want string
	}{
		{"v1", v1, "0x5db832ef1f06a767e0561f2fe53231240f8804895a21d5804ddb15b329c73c5e"},
		{"v2", v2, "0xba76934166855d51b0af261f57d3cd4bf48397c330f6e4b8804921b2ead973af"},
	} {
		got, err := tc.c.DeriveID()
		if err != nil || got.String() != tc.want {
			t.Errorf("%s channelId = %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := (Channel{Protocol: "v3"}).DeriveID(); !errors.Is(err, ErrUnknownProtocol) {
		t.Errorf("DeriveID(v3) error = %v, want ErrUnknownProtocol", err)
	}
}

func TestChannelDomain(t *testing.T) {
	c := Channel{Protocol: V2, ChainID: 4217, Escrow: repeatAddr(t, "7")}
	if got, want := c.Domain(), (Domain{Protocol: V2, ChainID: 4217, VerifyingContract: repeatAddr(t, "7")}); got != want {
		t.Errorf("Domain() = %+v, want %+v", got, want)
	}
}

func TestSignRecoverRoundTrip(t *testing.T) {
	key := mustKey(t, anvilKey1)
	want := AddressOf(key.PubKey())
	for _, d := range []Domain{
		{Protocol: V1, ChainID: 42431, VerifyingContract: repeatAddr(t, "9")},
		{Protocol: V2, ChainID: 4217, VerifyingContract: repeatAddr(t, "4")},
	} {
		for _, amt := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(123456789), d.Protocol.MaxAmount()} {
			id := Keccak256([]byte(amt.String()))
			sig, err := SignVoucher(key, d, id, amt)
			if err != nil {
				t.Fatalf("%s amount %s: sign: %v", d.Protocol, amt, err)
			}
			if len(sig) != SignatureLength || (sig[64] != 27 && sig[64] != 28) {
				t.Fatalf("bad wire signature %x", sig)
			}
			got, err := RecoverVoucherSigner(d, id, amt, sig)
			if err != nil || got != want {
				t.Fatalf("%s amount %s: recovered %s, %v; want %s", d.Protocol, amt, got, err, want)
			}
		}
	}
}

// highS turns a valid signature into its malleated twin (r, N−s, v flipped),
// which still recovers the same key on curves without the low-s rule.
func highS(sig []byte) []byte {
	n := secp256k1.S256().N
	s := new(big.Int).SetBytes(sig[32:64])
	out := bytes.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(out[32:64])
	out[64] ^= 27 ^ 28
	return out
}

func TestRejections(t *testing.T) {
	key := mustKey(t, anvilKey0)
	signer := AddressOf(key.PubKey())
	other := AddressOf(mustKey(t, anvilKey1).PubKey())
	d := Domain{Protocol: V2, ChainID: 4217, VerifyingContract: mustAddr(t, "0x4d50500000000000000000000000000000000000")}
	id := oneHash()
	amt := big.NewInt(1_000_000)
	sig, err := SignVoucher(key, d, id, amt)
	if err != nil {
		t.Fatal(err)
	}

	withV := func(v byte) []byte { s := bytes.Clone(sig); s[64] = v; return s }
	withR := func(r []byte) []byte { s := bytes.Clone(sig); copy(s[0:32], r); return s }
	withS := func(v []byte) []byte { s := bytes.Clone(sig); copy(s[32:64], v); return s }
	nBytes := secp256k1.S256().N.FillBytes(make([]byte, 32))
	zero := make([]byte, 32)
	otherID := id
	otherID[0] = 0xff

	for _, tc := range []struct {
		name   string
		d      Domain
		id     Hash
		amount *big.Int
		sig    []byte
		want   error
	}{
		{"high-s", d, id, amt, highS(sig), ErrHighS},
		{"length 64", d, id, amt, sig[:64], ErrSignatureLength},
		{"length 66", d, id, amt, append(bytes.Clone(sig), 0), ErrSignatureLength},
		{"empty", d, id, amt, nil, ErrSignatureLength},
		{"v=0", d, id, amt, withV(0), ErrRecoveryID},
		{"v=1", d, id, amt, withV(1), ErrRecoveryID},
		{"v=29", d, id, amt, withV(29), ErrRecoveryID},
		{"r=0", d, id, amt, withR(zero), ErrSignatureRange},
		{"r=N", d, id, amt, withR(nBytes), ErrSignatureRange},
		{"s=0", d, id, amt, withS(zero), ErrSignatureRange},
		{"s=N", d, id, amt, withS(nBytes), ErrSignatureRange},
		{"wrong channel id", d, otherID, amt, sig, ErrWrongSigner},
		{"wrong amount", d, id, big.NewInt(1_000_001), sig, ErrWrongSigner},
		{"wrong domain chain", Domain{Protocol: V2, ChainID: 1, VerifyingContract: d.VerifyingContract}, id, amt, sig, ErrWrongSigner},
		{"wrong protocol", Domain{Protocol: V1, ChainID: d.ChainID, VerifyingContract: d.VerifyingContract}, id, amt, sig, ErrWrongSigner},
		{"amount beyond uint96 (v2)", d, id, new(big.Int).Lsh(big.NewInt(1), 96), sig, ErrInvalidAmount},
		{"negative amount", d, id, big.NewInt(-1), sig, ErrInvalidAmount},
		{"nil amount", d, id, nil, sig, ErrInvalidAmount},
		{"unknown protocol", Domain{Protocol: "v3"}, id, amt, sig, ErrUnknownProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyVoucher(tc.d, tc.id, tc.amount, tc.sig, signer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyVoucher error = %v, want %v", err, tc.want)
			}
			sigErr := errors.Is(tc.want, ErrInvalidSignature)
			if errors.Is(err, ErrInvalidSignature) != sigErr {
				t.Errorf("errors.Is(%v, ErrInvalidSignature) = %v, want %v", err, !sigErr, sigErr)
			}
		})
	}

	// The malleated signature is otherwise genuine: without the low-s rule
	// it would recover the real signer, which is why the rule matters.
	if _, err := RecoverVoucherSigner(d, id, amt, highS(highS(sig))); err != nil {
		t.Errorf("double malleation should restore the original: %v", err)
	}

	err = VerifyVoucher(d, id, amt, sig, other)
	if !errors.Is(err, ErrWrongSigner) || !strings.Contains(err.Error(), signer.String()) || !strings.Contains(err.Error(), other.String()) {
		t.Errorf("wrong-signer error %q must wrap ErrWrongSigner and name %s and %s", err, signer, other)
	}
}

func TestAmountRangeV1(t *testing.T) {
	key := mustKey(t, anvilKey0)
	d := Domain{Protocol: V1, ChainID: 42431, VerifyingContract: repeatAddr(t, "9")}
	max := V1.MaxAmount()
	if _, err := SignVoucher(key, d, oneHash(), max); err != nil {
		t.Errorf("uint128 max must be signable on v1: %v", err)
	}
	over := new(big.Int).Add(max, big.NewInt(1))
	if _, err := SignVoucher(key, d, oneHash(), over); !errors.Is(err, ErrInvalidAmount) {
		t.Errorf("2^128 on v1: error = %v, want ErrInvalidAmount", err)
	}
	if _, err := VoucherDigest(d, oneHash(), big.NewInt(-5)); !errors.Is(err, ErrInvalidAmount) {
		t.Errorf("negative on v1: error = %v, want ErrInvalidAmount", err)
	}
	// v2 takes 2^96-1 but not 2^96, which v1 takes.
	d2 := Domain{Protocol: V2, ChainID: 4217}
	if _, err := VoucherDigest(d2, oneHash(), V2.MaxAmount()); err != nil {
		t.Errorf("uint96 max on v2: %v", err)
	}
	if _, err := VoucherDigest(d, oneHash(), new(big.Int).Lsh(big.NewInt(1), 96)); err != nil {
		t.Errorf("2^96 on v1: %v", err)
	}
}

func TestProtocol(t *testing.T) {
	if !V1.Valid() || !V2.Valid() || Protocol("").Valid() || Protocol("V2").Valid() {
		t.Error("Valid accepts exactly v1 and v2")
	}
	if got := V2.MaxAmount().String(); got != "79228162514264337593543950335" {
		t.Errorf("v2 max = %s", got)
	}
	if got := V1.MaxAmount().String(); got != "340282366920938463463374607431768211455" {
		t.Errorf("v1 max = %s", got)
	}
	if Protocol("v3").MaxAmount() != nil {
		t.Error("unknown protocol has a max amount")
	}
	V2.MaxAmount().SetInt64(0) // must not corrupt later calls
	if V2.MaxAmount().Sign() == 0 {
		t.Error("MaxAmount shares state between calls")
	}
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		s    string
		p    Protocol
		want string // "" means an error is expected
	}{
		{"0", V2, "0"},
		{"1000000", V1, "1000000"},
		{"007", V2, "7"},
		{"79228162514264337593543950335", V2, "79228162514264337593543950335"},
		{"79228162514264337593543950336", V2, ""},
		{"79228162514264337593543950336", V1, "79228162514264337593543950336"},
		{"340282366920938463463374607431768211455", V1, "340282366920938463463374607431768211455"},
		{"340282366920938463463374607431768211456", V1, ""},
		{"", V2, ""},
		{"-1", V2, ""},
		{"+1", V2, ""},
		{" 1", V2, ""},
		{"1 ", V2, ""},
		{"1e6", V2, ""},
		{"0x10", V2, ""},
		{"1.5", V2, ""},
		{"１", V2, ""}, // full-width digit
		{strings.Repeat("0", 78), V1, "0"},
		{strings.Repeat("0", 79), V1, ""},
		{"1", "v3", ""},
	} {
		got, err := ParseAmount(tc.s, tc.p)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseAmount(%q, %s) = %s, want error", tc.s, tc.p, got)
		case tc.want != "" && err != nil:
			t.Errorf("ParseAmount(%q, %s): %v", tc.s, tc.p, err)
		case tc.want != "" && got.String() != tc.want:
			t.Errorf("ParseAmount(%q, %s) = %s, want %s", tc.s, tc.p, got, tc.want)
		case err != nil && !errors.Is(err, ErrInvalidAmount) && !errors.Is(err, ErrUnknownProtocol):
			t.Errorf("ParseAmount(%q, %s) error %v wraps no sentinel", tc.s, tc.p, err)
		}
	}
}

func TestParseSignature(t *testing.T) {
	good := "0x" + strings.Repeat("ab", 65)
	if sig, err := ParseSignature("0x" + strings.ToUpper(good[2:])); err != nil || len(sig) != 65 {
		t.Errorf("upper-case hex: %v", err)
	}
	if got, _ := ParseSignature(good); FormatSignature(got) != good {
		t.Error("Parse/Format do not round-trip")
	}
	for _, s := range []string{
		"", "0x", good[2:], "0x" + strings.Repeat("ab", 64), "0x" + strings.Repeat("ab", 66),
		"0x" + strings.Repeat("ab", 64) + "a", "0x" + strings.Repeat("zz", 65), "1x" + good[2:],
	} {
		if _, err := ParseSignature(s); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("ParseSignature(%q) error = %v, want ErrInvalidSignature", s, err)
		}
	}
}

func TestParsePrivateKey(t *testing.T) {
	n := secp256k1.S256().N
	nMinus1 := new(big.Int).Sub(n, big.NewInt(1))
	hex32 := func(v *big.Int) string { return FormatSignature(v.FillBytes(make([]byte, 32))) }
	if _, err := ParsePrivateKey(hex32(nMinus1)); err != nil {
		t.Errorf("N-1 is a valid key: %v", err)
	}
	for _, s := range []string{
		hex32(big.NewInt(0)), hex32(n), hex32(new(big.Int).Add(n, big.NewInt(1))),
		anvilKey0[2:], anvilKey0 + "00", anvilKey0[:65], "",
	} {
		if _, err := ParsePrivateKey(s); !errors.Is(err, ErrInvalidPrivateKey) {
			t.Errorf("ParsePrivateKey(%q) error = %v, want ErrInvalidPrivateKey", s, err)
		}
	}
	if _, err := SignVoucher(nil, Domain{Protocol: V2}, oneHash(), big.NewInt(1)); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Errorf("SignVoucher(nil key) error = %v", err)
	}
}

func TestSeparatorUnknownProtocol(t *testing.T) {
	if (Domain{Protocol: "v9"}).Separator() != (Hash{}) {
		t.Error("unknown protocol must give the zero separator")
	}
}

func FuzzRecoverVoucherSigner(f *testing.F) {
	key := mustKey(f, anvilKey0)
	for _, v := range vectors(f) {
		sig, _ := ParseSignature(v.sig)
		f.Add(sig, uint64(1_000_000), v.domain.Protocol == V2)
		f.Add(highS(sig), uint64(1), false)
	}
	sig, _ := SignVoucher(key, Domain{Protocol: V2}, oneHash(), big.NewInt(5))
	f.Add(sig[:64], uint64(5), true)
	f.Add(bytes.Repeat([]byte{0xff}, 65), uint64(0), true)
	f.Add(make([]byte, 65), uint64(0), false)

	f.Fuzz(func(t *testing.T, sig []byte, amount uint64, v2 bool) {
		d := Domain{Protocol: V1, ChainID: 42431}
		if v2 {
			d = Domain{Protocol: V2, ChainID: 4217}
		}
		addr, err := RecoverVoucherSigner(d, oneHash(), new(big.Int).SetUint64(amount), sig)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("rejection %v does not wrap ErrInvalidSignature", err)
			}
			return
		}
		// Whatever was accepted is canonical.
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) || addr.IsZero() {
			t.Fatalf("accepted non-canonical signature %x → %s", sig, addr)
		}
		if new(big.Int).SetBytes(sig[32:64]).Cmp(new(big.Int).Rsh(secp256k1.S256().N, 1)) > 0 {
			t.Fatalf("accepted high-s signature %x", sig)
		}
	})
}

func BenchmarkRecoverVoucherSigner(b *testing.B) {
	key := mustKey(b, anvilKey0)
	d := Domain{Protocol: V2, ChainID: 4217, VerifyingContract: mustAddr(b, "0x4d50500000000000000000000000000000000000")}
	amt := big.NewInt(1_000_000)
	sig, err := SignVoucher(key, d, oneHash(), amt)
	if err != nil {
		b.Fatal(err)
	}
	want := AddressOf(key.PubKey())
	b.ReportAllocs()
	for b.Loop() {
		got, err := RecoverVoucherSigner(d, oneHash(), amt, sig)
		if err != nil || got != want {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "recoveries/s")
}

func BenchmarkSignVoucher(b *testing.B) {
	key := mustKey(b, anvilKey0)
	d := Domain{Protocol: V2, ChainID: 4217, VerifyingContract: mustAddr(b, "0x4d50500000000000000000000000000000000000")}
	amt := big.NewInt(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignVoucher(key, d, oneHash(), amt); err != nil {
			b.Fatal(err)
		}
	}
}
