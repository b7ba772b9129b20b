"""MixFlow post-training of the native SiT through Python: steps, hook, EMA model, checkpoints."""
import numpy as np
import pytest

import mixflow


def setup(seed=0, **kw):
    m = mixflow.Model.create(None, depth=2, hidden=32, heads=4, patch=4, input_size=8, in_channels=1, num_classes=3,
                             learn_sigma=False, seed=seed)
    args = dict(lr=1e-3, ema=0.9, seed=7)
    args.update(kw)
    return m, mixflow.Trainer(m, mixflow.Transport.preset("sit", gamma=0.8), **args)


def data(step, batch=8):
    rng = np.random.default_rng(step)
    return rng.standard_normal((batch, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, batch)


def test_steps_update_the_shared_model_and_the_loss_falls():
    m, tr = setup()
    before = m.state_dict()["blocks.0.attn.qkv.weight"].copy()
    x, y = data(0, 32)
    losses = [tr.step(x, y) for _ in range(60)]
    assert tr.step_count == 60
    assert not np.array_equal(m.state_dict()["blocks.0.attn.qkv.weight"], before)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    ema = tr.ema_model()
    w, e = m.state_dict()["final_layer.linear.weight"], ema.state_dict()["final_layer.linear.weight"]
    assert not np.array_equal(w, e) and np.abs(e).sum() > 0


def test_checkpoint_resume_is_bit_identical(tmp_path):
    _, a = setup()
    for s in range(3):
        a.step(*data(s))
    a.save(tmp_path / "ckpt.mixflow")
    b = mixflow.Trainer.resume(tmp_path / "ckpt.mixflow")
    assert b.step_count == 3
    for s in range(3, 6):
        assert a.step(*data(s)) == b.step(*data(s))
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    ea, eb = a.ema_model().state_dict(), b.ema_model().state_dict()
    assert all(np.array_equal(ea[k], eb[k]) for k in ea)


def test_gradient_hook_can_average_and_its_exceptions_propagate():
    m, tr = setup()
    calls = []

    def halve(g, step):
        calls.append(step)
        g *= 0.5          # an all-reduce would write the average here, in place
    tr.set_gradient_hook(halve)
    tr.step(*data(0))
    assert calls == [0]
    before = m.state_dict()

    def fail(g, step):
        raise RuntimeError("all-reduce lost a peer")
    tr.set_gradient_hook(fail)
    with pytest.raises(RuntimeError, match="lost a peer"):
        tr.step(*data(1))
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before) and tr.step_count == 1
    tr.set_gradient_hook(None)
    tr.step(*data(1))
    assert tr.step_count == 2


def test_bad_trainer_input():
    m, tr = setup()
    with pytest.raises(ValueError, match="x1 must have shape"):
        tr.step(np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(mixflow.InvalidArgument, match=r"y\[0\] must be in \[0, 3\]"):
        tr.step(np.zeros((2, 1, 8, 8), np.float32), [9, 0])
    with pytest.raises(mixflow.InvalidArgument, match="beta2"):
        mixflow.Trainer(m, mixflow.Transport(), betas=(0.9, 1.5))
    with pytest.raises(mixflow.InvalidArgument, match="trainer preset"):
        mixflow.Trainer(m, mixflow.Transport(), preset="adam")
    with pytest.raises(mixflow.IOFailure):
        mixflow.Trainer.resume("/nonexistent/ckpt.mixflow")


def test_rae_preset_recipe():
    m, _ = setup()
    tr = mixflow.Trainer(m, mixflow.Transport.preset("rae"), preset="rae", decay_steps=(2, 4))
    x, y = data(0)
    for _ in range(5):
        tr.step(x, y)
    assert tr.step_count == 5


def test_set_params_before_the_decay_gives_the_run_that_had_the_schedule_from_step_0(tmp_path):
    # Reference: the linear decay set at creation. Under test: constant lr, then the decay set after a
    # save/resume (as a pre-training cool-down is decided). Both must be bit-identical.
    _, a = setup(lr=1e-3, final_lr=0.0, decay_steps=(3, 6))
    _, b = setup(lr=1e-3)
    _, c = setup(lr=1e-3)
    for s in range(2):
        for tr in (a, b, c):
            tr.step(*data(s))
    b.save(tmp_path / "b.mixflow")
    b = mixflow.Trainer.resume(tmp_path / "b.mixflow")
    assert b.params["decay_end"] == 0
    b.set_params(final_lr=0.0, decay_start=3, decay_end=6)
    assert b.params == a.params
    for s in range(2, 8):
        losses = [tr.step(*data(s)) for tr in (a, b, c)]
        assert losses[0] == losses[1]
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not all(np.array_equal(sa[k], sc[k]) for k in sa)     # the schedule did change the run
    # Past decay_end the learning rate is 0: nothing moves any more.
    a.step(*data(9))
    assert all(np.array_equal(sa[k], v) for k, v in a.model.state_dict().items())
    b.save(tmp_path / "b2.mixflow")
    assert mixflow.Trainer.resume(tmp_path / "b2.mixflow").params == a.params


def test_set_params_validates_and_changes_nothing_on_error():
    _, tr = setup()
    before = tr.params
    with pytest.raises(mixflow.InvalidArgument, match="beta2"):
        tr.set_params(beta2=1.5)
    with pytest.raises(mixflow.InvalidArgument, match="ema_decay cannot change between 0"):
        tr.set_params(ema_decay=0.0)
    with pytest.raises(mixflow.InvalidArgument, match="decay_start/decay_end"):
        tr.set_params(decay_start=5, decay_end=2)
    with pytest.raises(TypeError, match="unknown trainer parameter"):
        tr.set_params(learning_rate=1.0)
    assert tr.params == before
    tr.set_params(ema_decay=0.5, max_grad_norm=1.0)
    assert tr.params["ema_decay"] == 0.5 and tr.params["max_grad_norm"] == 1.0
