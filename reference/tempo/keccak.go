package tempo

import (
	"hash"
	"io"
	"sync"

	"golang.org/x/crypto/sha3"
)

// keccakState is what the legacy Keccak sponge offers besides hash.Hash:
// squeezing with Read avoids the state copy Sum makes.
type keccakState interface {
	hash.Hash
	io.Reader
}

// keccakPool recycles sponges so hashing on the voucher hot path (several
// digests per verification) does not allocate.
var keccakPool = sync.Pool{
	New: func() any { return sha3.NewLegacyKeccak256().(keccakState) },
}

// Keccak256 is the original Keccak-256 (pre-FIPS padding) that the EVM, ABI
// encoding and EIP-712 use, over the concatenation of data.
func Keccak256(data ...[]byte) Hash {
	k := keccakPool.Get().(keccakState)
	k.Reset()
	for _, d := range data {
		k.Write(d)
	}
	var h Hash
	k.Read(h[:])
	keccakPool.Put(k)
	return h
}
