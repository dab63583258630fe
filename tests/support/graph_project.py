"""A small project in every language the code graph reads, with aliases and calls across files
(tests/test_graph.py, tests/test_graph_doors.py)."""
from __future__ import annotations

PROJECT = {
    # -- Python: a package re-exporting a class under another name, relative imports, an alias -----------
    "src/shop/__init__.py": """
        from .core.cart import Cart as ShoppingCart
        from .core import pricing
        """,
    "src/shop/core/__init__.py": "",
    "src/shop/core/pricing.py": """
        TAX = 0.2


        def total(items, tax=TAX):
            return sum(i.price for i in items) * (1 + tax)


        def discount(amount):
            return amount * 0.9
        """,
    "src/shop/core/cart.py": """
        from . import pricing as pr
        from .pricing import discount


        class Base:
            def describe(self):
                return "cart"


        class Cart(Base):
            def __init__(self):
                self.items = []

            def add(self, item):
                self.items.append(item)
                return self

            def checkout(self):
                amount = pr.total(self.items)
                return discount(amount)
        """,
    "src/shop/app.py": """
        import shop
        from shop import ShoppingCart
        from shop.core.cart import Cart


        def main(cart: Cart):
            c = ShoppingCart()
            c.add(1)
            print(c.checkout(), c.describe())
            cart.checkout()
            return shop.pricing.total([])


        def unknown(thing):
            thing.checkout()
            return checkout_all()


        class Special(Cart):
            def checkout(self):
                return super().checkout()


        def run_twice():
            main(Cart())
            main(Special())
        """,
    # -- TypeScript: named, default and namespace imports, re-exports, `new`, `extends`, `this` -------------
    "web/src/util/math.ts": """
        export function add(a: number, b: number): number {
          return a + b;
        }

        export class Calc {
          total = 0;
          run(x: number): number {
            this.total = add(this.total, x);
            return this.total;
          }
        }
        """,
    "web/src/index.ts": """
        import { Calc } from './util/math';
        export { add as plus } from './util/math';
        export * from './util/math';
        export default Calc;
        """,
    "web/src/app.ts": """
        import Calculator, { plus } from './index';
        import * as m from './util/math.js';

        export class Scientific extends m.Calc {
          run(x: number): number {
            return super.run(x * 2);
          }
        }

        export function compute(): number {
          const c = new Calculator();
          c.run(plus(1, 2));
          return m.add(3, 4);
        }
        """,
    "web/src/legacy.js": """
        const { add } = require('./util/math');

        function legacy() {
          return add(5, 6);
        }
        module.exports = { legacy };
        """,
    # -- Go: a package-qualified call with an import alias, a method through the receiver -------------------
    "go.mod": "module example.com/proj\n",
    "pkg/store/store.go": """
        package store

        type Store struct{ items []string }

        func New() *Store {
            return &Store{}
        }

        func (s *Store) Put(item string) {
            s.items = append(s.items, item)
            s.log(item)
        }

        func (s *Store) log(item string) {}
        """,
    "cmd/app/main.go": """
        package main

        import st "example.com/proj/pkg/store"

        func main() {
            s := st.New()
            s.Put("a")
            fill(&st.Store{})
        }
        """,
    "cmd/app/fill.go": """
        package main

        import st "example.com/proj/pkg/store"

        func fill(s *st.Store) {
            s.Put("b")
        }
        """,
    # -- Java: an import, the same package without one, a typed field, `extends` ----------------------------
    "java/com/acme/store/Store.java": """
        package com.acme.store;

        public class Store {
            public void save(String item) {}
        }
        """,
    "java/com/acme/app/Helper.java": """
        package com.acme.app;

        public class Helper {
            public static void help() {}
        }
        """,
    "java/com/acme/app/App.java": """
        package com.acme.app;

        import com.acme.store.Store;

        public class App extends Helper {
            private Store store = new Store();

            public void run() {
                store.save("x");
                Helper.help();
            }
        }
        """,
    # -- Rust: `use ... as`, a path call, a method through a typed local ------------------------------------
    "rs/src/store.rs": """
        pub struct Store {
            items: Vec<String>,
        }

        impl Store {
            pub fn new() -> Self {
                Store { items: Vec::new() }
            }

            pub fn put(&mut self, item: String) {
                self.items.push(item);
            }
        }
        """,
    "rs/src/main.rs": """
        mod store;
        use crate::store::Store as S;

        fn main() {
            let mut s = S::new();
            s.put(String::from("a"));
        }
        """,
}

# Code files of PROJECT (what the graph is made of).
CODE_FILES = sum(1 for p in PROJECT if p.endswith((".py", ".ts", ".js", ".go", ".java", ".rs")))

# -- two versions of one library, side by side in one KB (each a git repository tagged with its version) ----
# Between them: `store` calls another helper, `keep` is renamed `remember`, and `run` stays (lines move).
KIT_V1 = {
    "kit/__init__.py": "",
    "kit/store.py": """
        def _check(key):
            return bool(key)


        def store(key, value):
            _check(key)
            return None
        """,
    "kit/app.py": """
        from kit.store import store


        def keep(key):
            return store(key, 1)


        def run():
            return store("a", 1)
        """,
}
KIT_V2 = {
    "kit/__init__.py": "",
    "kit/store.py": """
        def _verify(key):
            return bool(key)


        def store(key, value, ttl=None):
            _verify(key)
            return None
        """,
    "kit/app.py": '''
        """The app."""
        from kit.store import store


        def remember(key):
            return store(key, 2, ttl=60)


        def run():
            value = 2
            return store("b", value)
        ''',
}
KIT_SITES = {  # the call sites of `store` in each version: (path, line, caller)
    "v1.0.0": {("kit/app.py", 5, "keep"), ("kit/app.py", 9, "run")},
    "v2.0.0": {("kit/app.py", 6, "remember"), ("kit/app.py", 11, "run")},
}


def two_kits(root):
    """kit v1.0.0 and v2.0.0, each a tagged git repository under `root`, indexed into KB 'default' of the data
    dir `root/data`: (data dir, v1 folder, v2 folder)."""
    from copilot.config import load_config
    from indexes.build import ingest
    from indexes.search import Index
    from support.versions import tagged_repo

    v1 = tagged_repo(root / "v1" / "kit", KIT_V1, "v1.0.0")
    v2 = tagged_repo(root / "v2" / "kit", KIT_V2, "v2.0.0")
    ingest(Index(load_config(env={}, overrides={"data_dir": str(root / "data")})), [str(v1), str(v2)])
    return root / "data", v1, v2
