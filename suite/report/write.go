package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The files WriteFiles writes.
const (
	JSONFile  = "conformance.json"
	TextFile  = "summary.txt"
	HTMLFile  = "report.html"
	JUnitFile = "junit.xml"
)

// WriteFiles writes every report into dir, which must exist:
// conformance.json, summary.txt, report.html and junit.xml.
func (s *Summary) WriteFiles(dir string) error {
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{JSONFile, s.WriteJSON},
		{TextFile, s.WriteText},
		{HTMLFile, s.WriteHTML},
		{JUnitFile, s.WriteJUnit},
	} {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("report %s: %w", filepath.Base(path), err)
	}
	return nil
}
