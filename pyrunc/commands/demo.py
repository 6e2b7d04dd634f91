def main(g, a):
    from pyrunc.demo import main as demo_main
    return demo_main(list(a.args) + ["--root", g["root"]])
