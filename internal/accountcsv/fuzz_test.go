package accountcsv

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary bytes to Reader. It must never panic, must
// end, must answer with an *Error or io.EOF, and whatever it reads must
// survive a trip through Writer and back unchanged (so an export of
// imported data is faithful, formula guard included).
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		"username,edipi\njdoe,1234567890\n",
		strings.Join(Columns, ",") + "\njdoe,1234567890,J,B,Doe,Jr,j@x.mil,USA,active,Org,Loc,Addr,+1,A;B,ops;admins," + fpA + "\n",
		"\uFEFFEDIPI, username ,groups\n1,a,\"x;;y ; z\"\n",
		"username,edipi,given_name\na,1,'=x\nb,2,''\nc,3,\"multi\nline\"\n",
		"username,edipi\na,\"1\"\"2\"\n",
		"username,edipi,categories\na,1,x\\;y;\\\\ ; \\z;q\\\n",
		"username,edipi\na,1,extra\n",
		"username,edipi\r\na,\"1\r\n2\"\r\n",
		"username,username\n",
		"",
		"\"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		// Each record takes at least one byte, so this bound is never
		// what ends a well-behaved reader.
		for range len(data) + 2 {
			a, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not an *Error", err, err)
				}
				return
			}
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Write(a); err != nil {
				t.Fatalf("Writer refused what Reader read: %v", err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			back, err := NewReader(&buf).Read()
			if err != nil {
				t.Fatalf("reading back %q: %v", buf.String(), err)
			}
			if !reflect.DeepEqual(back, a) {
				t.Fatalf("round trip changed the account\n got: %#v\nwant: %#v\n csv: %q", back, a, buf.String())
			}
		}
		t.Fatalf("Reader did not end within %d reads", len(data)+2)
	})
}
