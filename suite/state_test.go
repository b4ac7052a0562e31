package suite_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoPackageState fails when code of the suite writes a package-level
// variable, or takes its address: a run's state travels with the run and
// its cases, so runs in one process share nothing but constants and
// read-only tables.
func TestNoPackageState(t *testing.T) {
	dirs, err := filepath.Glob("cases/*")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, ".", "harness", "peer", "report", "connect", "load")
	files := 0
	for _, dir := range dirs {
		fset := token.NewFileSet()
		notTest := func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }
		pkgs, err := parser.ParseDir(fset, dir, notTest, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range pkgs {
			vars, specs := map[string]bool{}, map[*ast.ValueSpec]bool{}
			for _, f := range pkg.Files {
				for _, d := range f.Decls {
					if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
						for _, s := range g.Specs {
							specs[s.(*ast.ValueSpec)] = true
							for _, n := range s.(*ast.ValueSpec).Names {
								vars[n.Name] = true
							}
						}
					}
				}
			}
			// The parser resolves names declared in the same file and
			// leaves those of the package's other files unresolved.
			global := func(id *ast.Ident) bool {
				if !vars[id.Name] {
					return false
				}
				if id.Obj == nil {
					return true
				}
				spec, ok := id.Obj.Decl.(*ast.ValueSpec)
				return ok && specs[spec]
			}
			for _, f := range pkg.Files {
				files++
				ast.Inspect(f, func(n ast.Node) bool {
					var written []ast.Expr
					switch s := n.(type) {
					case *ast.AssignStmt:
						if s.Tok != token.DEFINE {
							written = s.Lhs
						}
					case *ast.IncDecStmt:
						written = []ast.Expr{s.X}
					case *ast.UnaryExpr:
						if s.Op == token.AND {
							written = []ast.Expr{s.X}
						}
					}
					for _, e := range written {
						if id := root(e); id != nil && global(id) {
							t.Errorf("%s: writes package-level variable %s", fset.Position(id.Pos()), id.Name)
						}
					}
					return true
				})
			}
		}
	}
	if files < 20 {
		t.Fatalf("checked %d files: the suite's packages were not found", files)
	}
}

// root is the variable an expression writes through: x in x, x.f, x[i],
// *x and (x).
func root(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return nil
		}
	}
}
