from modelrollout.services.metrics import Registry


def test_text_exposition_format():
    registry = Registry()
    registry.describe("x_total", "counter", "Things.")
    registry.inc("x_total", kind="A", result="ok")
    registry.inc("x_total", 2, kind="A", result="ok")
    registry.set("y", 0.5, name='quo"te')
    text = registry.render()
    assert "# TYPE x_total counter" in text
    assert 'x_total{kind="A",result="ok"} 3' in text
    assert 'y{name="quo\\"te"} 0.5' in text
    assert text.endswith("\n")
