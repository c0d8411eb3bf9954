"""Behaviour of the model `make repro` trained, on posts it never saw (CheckList-style).

Aggregate F1 can hide a model that learnt the wrong thing. These tests pin the behaviour the labeling guide asks
for: its own examples, the hard negatives it names, invariance to the surface of a post (traditional characters,
links, repost markers, spaces inserted to dodge filters), and low scores for posts with no content. The posts
here were written for these tests and are not in data/.
"""

from __future__ import annotations

import pytest

LABELS = ("candidacy", "police_warning")

# The six examples of the labeling guide (data/LABELING.md), verbatim.
GUIDE_EXAMPLES = [
    ("我决定以独立候选人身份参选本区人大代表，需要十位选民联名推荐，愿意支持的朋友请私信。", 1, 0),
    ("昨天宣布参选后，今天下午社区民警就上门了，说我这样做\"影响不好\"，让我想清楚。", 1, 1),
    ("又被国保约去喝茶了，问我最近在网上发的东西是谁让发的。", 0, 1),
    ("警方提醒：春节期间谨防冒充客服退款诈骗！", 0, 0),
    ("奥斯卡最佳影片候选名单出炉，你看好哪一部？", 0, 0),
    ("周末约了老同学去茶馆喝茶，聊了一下午。", 0, 0),
]

# One per line of the guide's "Always 0" list, written for this test.
HARD_NEGATIVES = [
    "美国中期选举投票今天开始，几个摇摆州的候选人差距都在一个百分点以内。",
    "我们班明天改选班长，我打算投给小周，她上学期帮大家整理了好多笔记。",
    "小区业委会换届，物业贴了通知让业主下周六去会所投票。",
    "大家都应该关心身边的选举，有机会就去参选，别总是抱怨。",
    "交警提示：雨天路滑，请减速慢行，保持安全车距。",
    "民警连夜蹲守，抓获一名盗窃电动车的嫌疑人，追回赃车三辆。",
    "网信办约谈某短视频平台负责人，要求整改低俗内容。",
    "老板今天把我叫到办公室警告了一顿，说再迟到就扣奖金。",
    "家里的水表坏了，物业说明天派人来换个新的。",
    "下午在西湖边的茶室喝了一壶龙井，太舒服了。",
]

# Clear positives in several voices, written for this test.
POSITIVES = [
    ("各位乡亲，我报名参选咱们村的村委会主任，十五号投票，请投我一票！", 1, 0),
    ("听说海淀区又有两位老师宣布以独立候选人身份参选区人大代表了，支持！", 1, 0),
    ("昨晚十一点被派出所叫去做笔录，就因为我转了那条帖子，签了字才放我回来。", 0, 1),
    ("朋友昨天被国保约谈，警告他不要再在微博上讨论征地的事。", 0, 1),
    ("刚在网上宣布参选人大代表，国保就打电话给我单位领导，让领导做我的工作。", 1, 1),
]


@pytest.mark.parametrize(("text", "candidacy", "police_warning"), GUIDE_EXAMPLES + POSITIVES)
def test_labels_posts_as_the_guide_does(real_model, text, candidacy, police_warning):
    row = real_model.predict([text]).iloc[0]
    assert (int(row["candidacy"]), int(row["police_warning"])) == (candidacy, police_warning), row.to_dict()


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_are_not_flagged(real_model, text):
    row = real_model.predict([text]).iloc[0]
    assert int(row["candidacy"]) == 0 and int(row["police_warning"]) == 0, row.to_dict()


@pytest.mark.parametrize("text", ["", "   ", "参", "被", "约", "我。", "哈哈哈", "[doge]", "http://t.cn/A6x9Kq2",
                                  "@某某 ", "转发微博", "好的", "//@小明:"])
def test_posts_without_content_score_low(real_model, text):
    probabilities = real_model.predict_proba([text])[0]
    assert probabilities.max() < 0.3, dict(zip(real_model.labels, probabilities))


SURFACE_VARIANTS = [
    # plain, then the same post as users disguise or decorate it: traditional characters, spaces inserted to dodge
    # filters, punctuation, links and emoji codes. Normalisation makes these the same post, so the probabilities
    # are the same, not only the decisions.
    ("我决定参选本区人大代表，请大家联名推荐",
     ["我決定參選本區人大代表，請大家聯名推薦",
      "我决定参 选本区人 大代表，请大家联名推荐",
      "我决定参选本区人大代表！！！请大家联名推荐。。。 http://t.cn/A6hQe3Zk[话筒]"]),
    ("昨天又被国保约去喝茶，问我为什么转发那篇文章",
     ["昨天又被國保約去喝茶，問我為什麼轉發那篇文章",
      "昨天又被国保约去喝茶，问我为什么转发那篇文章！！！！！",
      "“昨天又被国保约去喝茶”——问我为什么转发那篇文章? http://t.cn/R7bXw2Lm"]),
]

# The same post with something added around it (a repost chain, a hashtag, an @mention): not the same text, so only
# the decisions must hold.
WRAPPED_VARIANTS = [
    ("我决定参选本区人大代表，请大家联名推荐",
     ["转发微博 //@选民老李:我决定参选本区人大代表，请大家联名推荐 http://t.cn/A6hQe3Zk",
      "#独立参选# 我决定参选本区人大代表，请大家联名推荐[话筒]"]),
    ("昨天又被国保约去喝茶，问我为什么转发那篇文章",
     ["@路人甲 昨天又被国保约去喝茶，问我为什么转发那篇文章 http://t.cn/R7bXw2Lm"]),
]


@pytest.mark.parametrize(("plain", "variants"), SURFACE_VARIANTS)
def test_surface_changes_keep_the_probabilities(real_model, plain, variants):
    frame = real_model.predict([plain, *variants])
    for label in LABELS:
        assert (frame[f"{label}_prob"] - frame[f"{label}_prob"].iloc[0]).abs().max() < 1e-6, frame.to_dict("records")


@pytest.mark.parametrize(("plain", "variants"), WRAPPED_VARIANTS)
def test_wrapping_a_post_keeps_the_decision(real_model, plain, variants):
    frame = real_model.predict([plain, *variants])
    for label in LABELS:
        assert frame[label].nunique() == 1, frame[["text", f"{label}_prob", label]].to_dict("records")


def test_labels_are_independent(real_model):
    """Adding a police visit to a declaration raises police_warning and keeps candidacy."""
    declaration = "我决定参选本届区人大代表，已经拿到了十二位选民的联名推荐。"
    with_visit = declaration + "结果今天派出所民警上门，警告我不要再在网上发参选的消息。"
    frame = real_model.predict([declaration, with_visit])
    assert list(frame["candidacy"]) == [1, 1]
    assert list(frame["police_warning"]) == [0, 1]
