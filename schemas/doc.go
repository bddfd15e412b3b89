// Package schemas owns the Avro schemas of every record paystream writes to Kafka, the Go
// types they map to, and their codec in the Confluent wire format (magic byte 0, 4-byte
// big-endian schema id, Avro binary), so standard consumers and a Schema Registry can
// read every topic. It never talks to Kafka; the topic catalog lives in schemas/catalog.
//
// # Money on the wire
//
// Decided once: an amount travels as the Avro record paystream.Money
// {amount: string, currency: string}. amount is a plain decimal string, -?digits[.digits]
// with no exponent and no thousands separator ("1250.5", "-3"; at most 40 integer and 18
// fraction digits; trailing zeros carry no meaning);
// currency is the ISO 4217 code. A decimal string is exact, readable by every standard
// consumer without knowing a scale, and maps one to one onto shopspring/decimal and
// PostgreSQL NUMERIC. Avro's decimal logical type would fix one scale per field, which
// does not fit amounts whose exponent depends on their currency. Floats are never used.
// Whether an amount has more fraction digits than its currency allows is checked at the
// edge (ingress, file readers), not here.
//
// # Versions and ids
//
// Every schema lives in avro/<name>.v<N>.avsc; a released version is never edited (the
// tests compare each with its frozen copy in testdata/), a change adds version N+1 whose
// new fields have defaults. Every record carries schema_version. Writers use the newest
// version; readers decode with the version the record names through its schema id, so old
// records stay readable. Without a Schema Registry the ids come from a fixed table
// (100*k + version, see Schemas); with one, every version is registered at start under
// the subject <topic>-value of each topic that carries it and the registry's ids are used;
// an id this process does not know (a newer writer) is then fetched from the registry once
// and read into the Go type of its record name, so readers may be upgraded after writers.
// Without a registry, upgrade readers before writers.
//
// # Codecs
//
// Payment and PaymentOutcome, which every payment stage reads and writes, have a
// hand-written codec for one schema version (fastcodec.go, the kind's fast field): the
// bytes goavro writes (map entries in sorted key order, where goavro's order is random),
// and the values and errors the generic path (native, goavro, guard, fromNative) gives.
// Every other record and version, and any schema learned from the registry, goes through
// the generic path.
package schemas
