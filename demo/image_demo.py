"""Run a detector on one image and save a picture of its boxes, masks and labels."""
import argparse

from mmdet.apis import inference_detector, init_detector


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("img", help="image file")
    p.add_argument("config", help="config file")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out-file", default="result.png", help="where to write the drawn image (default: result.png)")
    p.add_argument("--device", default="cpu", help="device, e.g. cpu or cuda:0")
    p.add_argument("--score-thr", type=float, default=0.3, help="draw detections scoring at least this")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = init_detector(args.config, args.checkpoint, device=args.device)
    result = inference_detector(model, args.img)
    model.show_result(args.img, result, score_thr=args.score_thr, out_file=args.out_file)
    print(f"wrote {args.out_file}")


if __name__ == "__main__":
    main()
