package data

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"gridmap/geo"
	"gridmap/grid"
)

// Demo events: a history of reports for a wall that looks like a real
// command centre (DemoEvents), and the same reports and moves one by one
// for a live simulation (DemoReports, used by `gridmap simulate`).

// demoEventWeights is the class mix of demo events, in parts per thousand:
// street-level nuisances dominate a real city's caseload, emergencies are
// rare. Classes of the catalogue missing here get demoOtherWeight; codes
// here missing from the catalogue are skipped.
var demoEventWeights = map[string]float64{
	"0102": 150, "0505": 130, "0503": 110, "0201": 100, "0104": 90,
	"0506": 55, "0501": 45, "0504": 40, "0103": 30, "0101": 25, "0508": 25,
	"0301": 20, "0106": 15, "0302": 15, "0303": 15, "0202": 15, "0404": 15, "0406": 15,
	"0510": 12, "0203": 10, "0405": 10, "0601": 10, "0105": 8, "0502": 8, "0507": 8, "0304": 8,
	"0107": 6, "0402": 5, "0305": 4, "0407": 4, "0401": 2, "0411": 2, "0403": 1,
}

const demoOtherWeight = 3

// demoEventText holds short report texts per class; %s is the place.
var demoEventText = map[string][]string{
	"0101": {"%s有人搭建铁皮棚", "%s楼顶疑似违章加建", "%s围墙外私自搭建简易房"},
	"0102": {"%s垃圾堆放未清运", "%s生活垃圾散落地面，气味较大", "%s垃圾桶满溢，周边散落垃圾", "%s有人随意丢弃大件家具"},
	"0103": {"%s积存建筑垃圾渣土", "%s装修垃圾堆放多日未清"},
	"0104": {"%s路面有大片油污", "%s人行道落叶垃圾较多，未及时清扫", "%s路面泥浆污染", "%s地面有大量烟头纸屑"},
	"0105": {"%s河道水面漂浮垃圾", "%s排洪渠内有大量杂物"},
	"0106": {"%s绿化带内垃圾较多", "%s绿地被踩踏，杂物堆放"},
	"0107": {"%s有人焚烧树叶垃圾，烟雾较大"},
	"0201": {"%s电线杆上张贴小广告", "%s墙面喷涂办证电话", "%s公交站亭贴满小广告", "%s楼道内张贴开锁小广告"},
	"0202": {"%s私自悬挂横幅广告", "%s商铺外墙违规张贴海报"},
	"0203": {"%s人行道上摆放广告牌", "%s店铺门前立式广告牌占道"},
	"0301": {"%s工地夜间施工噪音大", "%s工地清晨开始施工扰民"},
	"0302": {"%s工地未覆盖防尘网，扬尘严重", "%s工地出入口车辆带泥上路"},
	"0303": {"%s渣土车沿途遗撒", "%s路面遗撒砂石"},
	"0304": {"%s施工围挡占用车道", "%s施工材料堆放占用人行道"},
	"0305": {"%s有人开挖路面，未见施工许可公示"},
	"0401": {"%s路面出现塌陷坑洞，存在安全隐患", "%s人行道塌陷约一米见方"},
	"0402": {"%s自来水管爆裂，路面大量冒水", "%s地下水管漏水"},
	"0403": {"%s闻到明显燃气味，疑似管道泄漏"},
	"0404": {"%s下水道堵塞，污水外溢", "%s雨水井盖破损", "%s污水井冒水"},
	"0405": {"%s路面积水较深，影响通行", "%s下穿通道积水"},
	"0406": {"%s路面坑洼破损", "%s人行道地砖松动破损"},
	"0407": {"%s路灯不亮", "%s配电箱门损坏，线缆外露"},
	"0411": {"%s垃圾桶起火", "%s一处商铺冒烟起火", "%s电动车起火"},
	"0501": {"%s流动摊贩聚集叫卖", "%s有三轮车游商占道售卖水果"},
	"0502": {"%s有流浪人员长期滞留"},
	"0503": {"%s商铺占用人行道摆卖", "%s夜市摊档占道经营", "%s早餐摊占道经营"},
	"0504": {"%s餐饮店店外摆放桌椅", "%s汽修店在门外维修车辆"},
	"0505": {"%s机动车占用人行道停放", "%s车辆违停堵塞消防通道", "%s路口多辆车违停"},
	"0506": {"%s共享单车大量堆积", "%s电动车乱停放堵塞通道"},
	"0507": {"%s有大型犬未拴绳", "%s流浪犬聚集，居民担心安全"},
	"0508": {"%s商铺音响外放声音过大", "%s广场舞音响噪音扰民", "%s夜间娱乐场所噪音扰民"},
	"0510": {"%s夜间露天烧烤油烟扰民", "%s店外设烧烤炉经营"},
	"0601": {"%s市民反映问题，需现场核实"},
}

var demoSpots = []string{"路口东侧", "公交站旁", "小区南门", "菜市场门口", "地铁站出口", "学校周边", "商业街",
	"城中村巷道内", "公园入口", "人行天桥下", "停车场出口", "沿街商铺前", "工业园门口", "社区服务中心旁", "农贸市场旁", "河堤步道"}

// demoHourWeights is when reports come in (local hour): patrols and
// citizens by day, a trickle at night.
var demoHourWeights = [24]float64{0.6, 0.4, 0.3, 0.2, 0.2, 0.4, 1.2, 3, 6, 9, 10, 9.5, 6, 5.5, 8, 9, 9, 7.5, 5, 4, 3.5, 3, 2, 1.2}

// Sources: grid workers on patrol report most; the hotline takes what
// residents hear and smell; cameras and sensors watch parking, rubbish and water.
var (
	demoSources       = []grid.EventSource{grid.SourceGridWorker, grid.SourceHotline, grid.SourceApp, grid.SourceSensor, grid.SourceInspection}
	demoSourceMix     = []float64{52, 18, 12, 8, 10}
	demoSourceHotline = []float64{25, 55, 15, 0, 5}
	demoSourceSensor  = []float64{40, 8, 8, 35, 9}
	demoHotlineHeavy  = map[string]bool{"0508": true, "0301": true, "0502": true, "0507": true, "0403": true, "0411": true}
	demoSensorHeavy   = map[string]bool{"0505": true, "0405": true, "0102": true, "0506": true, "0302": true}
)

// demoAltDepartment is where an event goes when the first department says
// it is not theirs.
var demoAltDepartment = map[string]string{
	"cgj": "jdb", "jdb": "cgj", "jtj": "zjj", "swj": "jtj", "jgj": "jtj", "hbj": "cgj",
	"gaj": "jdb", "zjj": "cgj", "scj": "cgj", "yjj": "xfj", "xfj": "yjj", "gdj": "jtj",
}

var (
	demoRejectNotes   = []string{"重复上报，已合并至同类案件", "经核实不属于城市管理范围", "现场核实无此问题", "信息不全，无法立案"}
	demoHandlingNotes = []string{"已接单，安排人员前往现场", "处置人员已到场", "正在处置"}
	demoReturnNotes   = []string{"现场核查未处置到位，退回重派", "问题反弹，退回处置部门"}
	demoVerifyNotes   = []string{"现场核查，已处置到位", "核查属实，处置到位"}
	demoHandledNotes  = map[string][]string{
		"01": {"已清理完毕，现场恢复整洁", "已安排保洁清理"},
		"02": {"小广告已清除", "已拆除违规广告"},
		"03": {"已责令施工单位整改", "施工单位已整改到位"},
		"04": {"已抢修完毕，恢复正常", "已设置围挡并完成修复"},
		"05": {"已劝离，现场秩序恢复", "已依法处理，现场已规范"},
	}
)

// DemoReports draws realistic reports over the store's grids (denser in
// some streets and around hot spots) and plausible next moves of events,
// reproducibly for a seed. It is safe for concurrent use.
type DemoReports struct {
	mu      sync.Mutex
	cfg     *EventConfig
	loc     *grid.Locator
	rng     *rand.Rand
	grids   []grid.Unit
	preps   []*geo.Prepared
	hot     [][]orb.Point // per grid, its hot spots (a market, a bus stop)
	cum     []float64     // cumulative grid weights
	classes []grid.EventClass
	ccum    []float64
	depts   []string // sorted department codes
	periods []grid.Period
	workday time.Duration
}

// NewDemoReports prepares a generator over the store's current grids
// (only those of district when it is given) and its event catalogue.
func (s *Store) NewDemoReports(ctx context.Context, seed uint64, district string) (*DemoReports, error) {
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		return nil, err
	}
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		return nil, err
	}
	return newDemoReports(cfg, units, seed, district)
}

func newDemoReports(cfg *EventConfig, units []grid.Unit, seed uint64, district string) (*DemoReports, error) {
	g := &DemoReports{cfg: cfg, loc: grid.NewLocator(units), rng: rand.New(rand.NewPCG(seed, seed^0x5eed_e7e7_0bad_cafe))}
	for _, u := range units {
		if u.Layer == grid.BaseLayer && u.Level == grid.Grid && strings.HasPrefix(u.Code, district) {
			g.grids = append(g.grids, u)
		}
	}
	if len(g.grids) == 0 {
		if district != "" {
			return nil, fmt.Errorf("no grids in district %q", district)
		}
		return nil, fmt.Errorf("the store has no grids: build the demo city first")
	}
	sort.Slice(g.grids, func(i, j int) bool { return g.grids[i].Code < g.grids[j].Code })
	g.preps = make([]*geo.Prepared, len(g.grids))
	g.hot = make([][]orb.Point, len(g.grids))
	// Busy streets and quiet ones: a street's weight is log-normal; a
	// grid's is its street's times the square root of its area, times a
	// log-normal of its own.
	streetW := map[string]float64{}
	var total float64
	for _, u := range g.grids {
		st := u.Code[:9]
		w, ok := streetW[st]
		if !ok {
			w = math.Exp(0.9 * g.rng.NormFloat64())
			streetW[st] = w
		}
		total += w * math.Sqrt(planar.Area(u.Geometry)) * math.Exp(0.5*g.rng.NormFloat64())
		g.cum = append(g.cum, total)
	}
	codes := make([]string, 0, len(cfg.Classes))
	for c := range cfg.Classes {
		if _, ok := cfg.Departments[cfg.Classes[c].Department]; ok {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("the store has no event classes")
	}
	sort.Strings(codes)
	total = 0
	for _, c := range codes {
		w, ok := demoEventWeights[c]
		if !ok {
			w = demoOtherWeight
		}
		total += w
		g.classes = append(g.classes, cfg.Classes[c])
		g.ccum = append(g.ccum, total)
	}
	for d := range cfg.Departments {
		g.depts = append(g.depts, d)
	}
	sort.Strings(g.depts)
	g.periods = cfg.Calendar.Periods()
	for _, p := range g.periods {
		g.workday += time.Duration(p.End-p.Start) * time.Minute
	}
	return g, nil
}

// Config is the event configuration the generator draws from.
func (g *DemoReports) Config() *EventConfig { return g.cfg }

// Next is a report made at now: a located point in a grid, a class, a
// source and reporter, a description.
func (g *DemoReports) Next(now time.Time) NewEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.report(now)
}

func pick(rng *rand.Rand, cum []float64) int {
	k := sort.SearchFloat64s(cum, rng.Float64()*cum[len(cum)-1])
	return min(k, len(cum)-1)
}

func pickWeighted(rng *rand.Rand, w []float64) int {
	var total float64
	for _, x := range w {
		total += x
	}
	r := rng.Float64() * total
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

func oneOf[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// point draws a point covered by grid k: near one of its hot spots (45%)
// or anywhere in it.
func (g *DemoReports) point(k int) orb.Point {
	if g.preps[k] == nil {
		g.preps[k] = geo.Prepare(g.grids[k].Geometry)
		for range 1 + g.rng.IntN(2) {
			g.hot[k] = append(g.hot[k], g.uniform(k))
		}
	}
	if g.rng.Float64() < 0.45 {
		h := oneOf(g.rng, g.hot[k])
		const sigma = 40 / 111195.0 // 40 m
		for range 20 {
			p := orb.Point{h[0] + g.rng.NormFloat64()*sigma/math.Cos(h[1]*math.Pi/180), h[1] + g.rng.NormFloat64()*sigma}
			if g.preps[k].Covers(p) {
				return p
			}
		}
	}
	return g.uniform(k)
}

func (g *DemoReports) uniform(k int) orb.Point {
	b := g.preps[k].Bound
	var p orb.Point
	for range 200 {
		p = orb.Point{b.Min[0] + g.rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + g.rng.Float64()*(b.Max[1]-b.Min[1])}
		if g.preps[k].Covers(p) {
			return p
		}
	}
	return p
}

func (g *DemoReports) report(now time.Time) NewEvent {
	var k int
	var p orb.Point
	var loc grid.Location
	for try := 0; ; try++ {
		k = pick(g.rng, g.cum)
		p = g.point(k)
		// Round to 1e-7° (1 cm), as a GPS reports it.
		p = orb.Point{math.Round(p[0]*1e7) / 1e7, math.Round(p[1]*1e7) / 1e7}
		if loc = g.loc.Locate(p[0], p[1]); loc.Grid != nil || try > 100 {
			break
		}
	}
	class := g.classes[pick(g.rng, g.ccum)]
	mix := demoSourceMix
	switch {
	case demoHotlineHeavy[class.Code]:
		mix = demoSourceHotline
	case demoSensorHeavy[class.Code]:
		mix = demoSourceSensor
	}
	src := demoSources[pickWeighted(g.rng, mix)]
	var reporter string
	var occurred *time.Time
	switch src {
	case grid.SourceGridWorker:
		reporter = "网格员-" + loc.Grid.Code
	case grid.SourceHotline:
		reporter = "12345热线"
	case grid.SourceApp:
		reporter = fmt.Sprintf("市民APP用户-%04d", g.rng.IntN(10000))
	case grid.SourceSensor:
		if demoSensorHeavy[class.Code] && class.Code != "0405" && class.Code != "0302" {
			reporter = fmt.Sprintf("AI视频-%s-%04d", loc.Grid.Code[:9], g.rng.IntN(10000))
		} else {
			reporter = fmt.Sprintf("物联传感器-%s-%04d", loc.Grid.Code[:9], g.rng.IntN(10000))
		}
	case grid.SourceInspection:
		reporter = fmt.Sprintf("%s-巡查员-%d", class.Department, 1+g.rng.IntN(9))
	}
	if src == grid.SourceHotline || src == grid.SourceApp {
		t := now.Add(-time.Duration(5+g.rng.IntN(115)) * time.Minute).Truncate(time.Second)
		occurred = &t
	}
	place := oneOf(g.rng, demoSpots)
	if loc.Community != nil && g.rng.Float64() < 0.8 {
		place = loc.Community.Name + place
	}
	texts := demoEventText[class.Code]
	desc := place + "发现" + class.Name
	if len(texts) > 0 {
		desc = fmt.Sprintf(oneOf(g.rng, texts), place)
	}
	return NewEvent{Class: class.Code, Lon: p[0], Lat: p[1], CRS: geo.WGS84, InputLon: p[0], InputLat: p[1], Location: loc,
		Description: desc, Source: src, Reporter: reporter, OccurredAt: occurred}
}

// Actors of the workflow.
func (g *DemoReports) clerk() string { return fmt.Sprintf("受理员-%02d", 1+g.rng.IntN(12)) }

func (g *DemoReports) staff(dept string) string {
	return fmt.Sprintf("%s-处置员-%d", dept, 1+g.rng.IntN(9))
}

func (g *DemoReports) verifier(gridCode string) string {
	if g.rng.Float64() < 0.8 {
		return "网格员-" + gridCode
	}
	return fmt.Sprintf("核查员-%d", 1+g.rng.IntN(6))
}

func (g *DemoReports) handledNote(class string) string {
	if len(class) >= 2 {
		if ns, ok := demoHandledNotes[class[:2]]; ok {
			return oneOf(g.rng, ns)
		}
	}
	return "已处置完毕"
}

func (g *DemoReports) deptName(code string) string {
	if d, ok := g.cfg.Departments[code]; ok {
		return d.Name
	}
	return code
}

// otherDepartment is the department a misrouted event goes to instead of cur.
func (g *DemoReports) otherDepartment(cur string) string {
	if d, ok := demoAltDepartment[cur]; ok && d != cur {
		if _, ok := g.cfg.Departments[d]; ok {
			return d
		}
	}
	var others []string
	for _, d := range g.depts {
		if d != cur {
			others = append(others, d)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return oneOf(g.rng, others)
}

// Move is a plausible next step for ev (its status, department, class and
// grid as read), with actor and note; false when ev is final. The step is
// legal by grid.CheckTransition.
func (g *DemoReports) Move(ev *Event) (Transition, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.rng.Float64()
	switch ev.Status {
	case grid.StatusReported:
		if r < 0.06 {
			return Transition{To: grid.StatusRejected, Actor: g.clerk(), Note: oneOf(g.rng, demoRejectNotes)}, true
		}
		return Transition{To: grid.StatusRegistered, Actor: g.clerk(), Note: "符合立案条件，予以立案"}, true
	case grid.StatusRegistered:
		return Transition{To: grid.StatusDispatched, Actor: g.clerk(), Note: "派遣至" + g.deptName(ev.Department), Department: ev.Department}, true
	case grid.StatusDispatched, grid.StatusHandling:
		if r < 0.04 {
			if d := g.otherDepartment(ev.Department); d != "" {
				return Transition{To: grid.StatusDispatched, Actor: g.clerk(), Note: "原部门反馈非本部门职责，改派" + g.deptName(d), Department: d}, true
			}
		}
		if ev.Status == grid.StatusDispatched {
			return Transition{To: grid.StatusHandling, Actor: g.staff(ev.Department), Note: oneOf(g.rng, demoHandlingNotes)}, true
		}
		return Transition{To: grid.StatusHandled, Actor: g.staff(ev.Department), Note: g.handledNote(ev.Class)}, true
	case grid.StatusHandled:
		if r < 0.08 {
			return Transition{To: grid.StatusReturned, Actor: g.verifier(ev.GridCode), Note: oneOf(g.rng, demoReturnNotes)}, true
		}
		return Transition{To: grid.StatusVerified, Actor: g.verifier(ev.GridCode), Note: oneOf(g.rng, demoVerifyNotes)}, true
	case grid.StatusReturned:
		return Transition{To: grid.StatusDispatched, Actor: g.clerk(), Note: "重新派遣至" + g.deptName(ev.Department), Department: ev.Department}, true
	case grid.StatusVerified:
		return Transition{To: grid.StatusClosed, Actor: g.clerk(), Note: "核查通过，结案"}, true
	}
	return Transition{}, false
}

// --- history ---

// DemoEventsResult says what DemoEvents wrote.
type DemoEventsResult struct {
	Events       int
	LogEntries   int
	ByStatus     map[grid.EventStatus]int
	Overdue      int // open and past the deadline at now
	HandledLate  int // first handled after the deadline
	Returned     int // returned at least once
	Redispatched int // sent on to another department at least once
	Seconds      float64
}

// demoEvent is one generated event and its life.
type demoEvent struct {
	ne       NewEvent
	class    grid.EventClass
	reported time.Time
	deadline time.Time
	log      []LogEntry // up to now
	dept     string     // the department at now
	code     string
}

// DemoEvents writes n events reported over the 30 days before now, each
// walked through the workflow with realistic delays up to now, with its
// log: old events mostly closed, some rejected, returned or re-dispatched,
// recent ones anywhere on the way, a share of the open ones overdue. The
// same seed and now give the same events on the same city. Codes continue
// each district's daily numbering (event_code_seq), so live reports go on
// from the last one. Events and logs are written with COPY in one
// transaction; no feed rows are written (history is not live news).
func (s *Store) DemoEvents(ctx context.Context, n int, seed uint64, now time.Time) (DemoEventsResult, error) {
	start := time.Now()
	res := DemoEventsResult{ByStatus: map[grid.EventStatus]int{}}
	if n <= 0 {
		return res, nil
	}
	g, err := s.NewDemoReports(ctx, seed, "")
	if err != nil {
		return res, err
	}
	now = now.Truncate(time.Second)
	evs := make([]*demoEvent, n)
	for i := range evs {
		t0 := g.reportTime(now)
		ne := g.report(t0)
		class := g.cfg.Classes[ne.Class]
		deadline, err := g.cfg.Calendar.Deadline(t0, class.Limit)
		if err != nil {
			return res, fmt.Errorf("deadline of class %s: %w", class.Code, err)
		}
		e := &demoEvent{ne: ne, class: class, reported: t0, deadline: deadline, dept: class.Department}
		g.life(e, now)
		evs[i] = e
	}
	// Codes: per district and local date, in time order.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return evs[order[a]].reported.Before(evs[order[b]].reported) })
	loc := g.cfg.Calendar.Location()
	type dayKey struct{ district, day string }
	perDay := map[dayKey]int{}
	for _, e := range evs {
		perDay[dayKey{e.ne.Location.Grid.Code[:6], e.reported.In(loc).Format(time.DateOnly)}]++
	}
	keys := make([]dayKey, 0, len(perDay))
	for k := range perDay {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].district < keys[j].district || keys[i].district == keys[j].district && keys[i].day < keys[j].day
	})

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	// Reserve the numbers (after any given already), in key order like
	// reportTx, so a live report waits for this transaction and goes on
	// from the last number used here.
	districts, days, counts := make([]string, len(keys)), make([]string, len(keys)), make([]int32, len(keys))
	for i, k := range keys {
		districts[i], days[i], counts[i] = k.district, k.day, int32(perDay[k])
	}
	rows, err := tx.Query(ctx, `INSERT INTO event_code_seq (district, day, last)
		SELECT d, day, n FROM unnest($1::text[], $2::date[], $3::int[]) AS t(d, day, n) ORDER BY d, day
		ON CONFLICT (district, day) DO UPDATE SET last = event_code_seq.last + EXCLUDED.last
		RETURNING district, day::text, last`, districts, days, counts)
	if err != nil {
		return res, err
	}
	next := map[dayKey]int{}
	if err := forEach(rows, func() error {
		var k dayKey
		var last int
		if err := rows.Scan(&k.district, &k.day, &last); err != nil {
			return err
		}
		next[k] = last - perDay[k] + 1
		return nil
	}); err != nil {
		return res, fmt.Errorf("event code numbers: %w", err)
	}
	for _, i := range order {
		e := evs[i]
		k := dayKey{e.ne.Location.Grid.Code[:6], e.reported.In(loc).Format(time.DateOnly)}
		if e.code, err = grid.EventCode(k.district, e.reported.In(loc), next[k]); err != nil {
			return res, err
		}
		next[k]++
	}

	eventRows := make([][]any, 0, n)
	var logRows [][]any
	for _, i := range order {
		e := evs[i]
		locJSON, err := json.Marshal(e.ne.Location)
		if err != nil {
			return res, err
		}
		geom, err := geo.EWKB(orb.Point{e.ne.Lon, e.ne.Lat})
		if err != nil {
			return res, err
		}
		last := e.log[len(e.log)-1]
		var handled, closed *time.Time
		for _, l := range e.log {
			if l.To == grid.StatusHandled && handled == nil {
				at := l.At
				handled = &at
			}
			if l.To.Final() {
				at := l.At
				closed = &at
			}
		}
		eventRows = append(eventRows, []any{e.code, e.class.Code, string(last.To), geom, string(e.ne.CRS), e.ne.InputLon, e.ne.InputLat,
			e.ne.Location.Grid.Code, locJSON, e.dept, e.ne.Description, string(e.ne.Source), e.ne.Reporter, []string{},
			e.ne.OccurredAt, e.reported, e.deadline, handled, closed, last.At, len(e.log)})
		for _, l := range e.log {
			var from, dept any
			if l.From != "" {
				from = string(l.From)
			}
			if l.Department != "" {
				dept = l.Department
			}
			logRows = append(logRows, []any{e.code, l.N, from, string(l.To), l.Actor, l.Note, dept, l.At})
		}
		res.ByStatus[last.To]++
		if grid.Overdue(last.To, e.deadline, now) {
			res.Overdue++
		}
		if handled != nil && handled.After(e.deadline) {
			res.HandledLate++
		}
		var returned, redispatched bool
		for _, l := range e.log {
			returned = returned || l.To == grid.StatusReturned
			redispatched = redispatched || l.To == grid.StatusDispatched && (l.From == grid.StatusDispatched || l.From == grid.StatusHandling)
		}
		if returned {
			res.Returned++
		}
		if redispatched {
			res.Redispatched++
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"code", "class_code", "status", "geom", "crs", "input_lon", "input_lat",
		"grid_code", "location", "department_code", "description", "source", "reporter", "media",
		"occurred_at", "reported_at", "deadline", "handled_at", "closed_at", "updated_at", "version"}, pgx.CopyFromRows(eventRows)); err != nil {
		return res, fmt.Errorf("copy events: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"event_log"}, []string{"event_code", "n", "from_status", "to_status", "actor", "note",
		"department_code", "at"}, pgx.CopyFromRows(logRows)); err != nil {
		return res, fmt.Errorf("copy event log: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, err
	}
	res.Events, res.LogEntries = n, len(logRows)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// CountEvents counts stored events (from the exact per-grid counts).
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.Pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0)::bigint FROM event_counts`).Scan(&n)
	return n, err
}

// demoDays is how far back the history goes.
const demoDays = 30

// reportTime draws a report time in the demoDays before now: more the
// more recent (an exponential with a 20-day scale), mostly by day, fewer
// on rest days.
func (g *DemoReports) reportTime(now time.Time) time.Time {
	loc := g.cfg.Calendar.Location()
	const scale = 20.0
	from := now.Add(-demoDays * 24 * time.Hour)
	for {
		age := -scale * math.Log(1-g.rng.Float64()*(1-math.Exp(-demoDays/scale)))
		day := now.Add(-time.Duration(age * float64(24*time.Hour))).In(loc)
		if !g.cfg.Calendar.IsWorkday(day) && g.rng.Float64() < 0.3 {
			continue
		}
		h := pickWeighted(g.rng, demoHourWeights[:])
		t := time.Date(day.Year(), day.Month(), day.Day(), h, g.rng.IntN(60), g.rng.IntN(60), 0, loc)
		if t.After(from) && !t.After(now) {
			return t
		}
	}
}

// addWorking is the instant when d of working time has passed after t
// (Calendar.Deadline with a duration: an instant on a period's end stays
// there).
func (g *DemoReports) addWorking(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t
	}
	cal := g.cfg.Calendar
	loc := cal.Location()
	t = t.In(loc)
	y, m, dd := t.Date()
	for i, idle := 0, 0; idle < 3660; i++ {
		day := time.Date(y, m, dd+i, 12, 0, 0, 0, loc)
		if !cal.IsWorkday(day) {
			idle++
			continue
		}
		idle = 0
		for _, p := range g.periods {
			from := time.Date(y, m, dd+i, 0, p.Start, 0, 0, loc)
			end := time.Date(y, m, dd+i, 0, p.End, 0, 0, loc)
			if !end.After(t) {
				continue
			}
			if from.Before(t) {
				from = t
			}
			if avail := end.Sub(from); d <= avail {
				return from.Add(d)
			} else {
				d -= avail
			}
		}
	}
	return t
}

// uniformDur is a duration uniformly in [a, b).
func (g *DemoReports) uniformDur(a, b time.Duration) time.Duration {
	return a + time.Duration(g.rng.Float64()*float64(b-a))
}

// centreDelay is when the command centre (staffed day and night, thinly
// at night) gets to an item that arrived at t: after a log-normal wait of
// the given median by day, first thing in the morning at night; urgent
// items within minutes at any hour.
func (g *DemoReports) centreDelay(t time.Time, median time.Duration, urgent bool) time.Time {
	if urgent {
		return t.Add(time.Duration(math.Min(30, 4*math.Exp(0.6*g.rng.NormFloat64())) * float64(time.Minute)))
	}
	lt := t.In(g.cfg.Calendar.Location())
	if h := lt.Hour(); h >= 22 || h < 8 {
		day := lt
		if h >= 22 {
			day = lt.AddDate(0, 0, 1)
		}
		morning := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, lt.Location())
		return morning.Add(g.uniformDur(0, 90*time.Minute))
	}
	return t.Add(time.Duration(math.Min(float64(6*time.Hour), float64(median)*math.Exp(g.rng.NormFloat64()))))
}

// limit is a class's limit as working time.
func (g *DemoReports) limit(c grid.EventClass) time.Duration {
	if c.Limit.Unit == grid.WorkingDays {
		return time.Duration(c.Limit.Amount) * g.workday
	}
	return time.Duration(c.Limit.Amount) * time.Hour
}

// life walks e through the workflow from its report, keeping the steps
// up to now.
func (g *DemoReports) life(e *demoEvent, now time.Time) {
	rng := g.rng
	t := e.reported
	done := false
	add := func(to grid.EventStatus, at time.Time, actor, note, dept string) {
		if done {
			return
		}
		at = at.Truncate(time.Second)
		if floor := t.Add(30 * time.Second); at.Before(floor) {
			at = floor
		}
		if at.After(now) {
			done = true
			return
		}
		from := grid.EventStatus("")
		if len(e.log) > 0 {
			from = e.log[len(e.log)-1].To
		}
		e.log = append(e.log, LogEntry{N: len(e.log) + 1, From: from, To: to, Actor: actor, Note: note, Department: dept, At: at})
		if dept != "" {
			e.dept = dept
		}
		t = at
	}
	e.log = []LogEntry{{N: 1, To: grid.StatusReported, Actor: reportActor(e.ne), At: t}}
	urgent := e.class.Major == "04" || e.class.Limit.Unit == grid.WorkingHours && e.class.Limit.Amount <= 1
	limit := g.limit(e.class)
	dept := e.class.Department
	// The centre takes short limits first: its median waits are a share
	// of the limit, within bounds.
	registerWait := min(max(limit*15/100, 8*time.Minute), 30*time.Minute)
	dispatchWait := min(max(limit/10, 5*time.Minute), 20*time.Minute)
	if rng.Float64() < 0.05 {
		add(grid.StatusRejected, g.centreDelay(t, registerWait, urgent), g.clerk(), oneOf(rng, demoRejectNotes), "")
		return
	}
	add(grid.StatusRegistered, g.centreDelay(t, registerWait, urgent), g.clerk(), "符合立案条件，予以立案", "")
	add(grid.StatusDispatched, g.centreDelay(t, dispatchWait, urgent), g.clerk(), "派遣至"+g.deptName(dept), dept)
	// When the department reports it handled, as a share of the limit
	// from the report: mostly in time, some late, a few long stuck.
	var f float64
	switch r := rng.Float64(); {
	case r < 0.025:
		f = 1.05 + rng.Float64()*0.55
	case r < 0.03:
		f = 2 + rng.Float64()*2
	default:
		f = 0.15 + 0.82*math.Pow(rng.Float64(), 0.7)
	}
	target := g.addWorking(e.reported, time.Duration(f*float64(limit)))
	if rng.Float64() < 0.045 {
		if rng.Float64() < 0.3 {
			add(grid.StatusHandling, g.addWorking(t, g.uniformDur(5*time.Minute, limit/5+10*time.Minute)), g.staff(dept), oneOf(rng, demoHandlingNotes), "")
		}
		if other := g.otherDepartment(dept); other != "" {
			add(grid.StatusDispatched, g.addWorking(t, g.uniformDur(10*time.Minute, limit/4+20*time.Minute)), g.clerk(),
				"原部门反馈非本部门职责，改派"+g.deptName(other), other)
			dept = other
			if later := g.addWorking(t, g.uniformDur(limit/5, limit/2)+30*time.Minute); later.After(target) {
				target = later
			}
		}
	}
	wt := g.cfg.Calendar.WorkingTime(t, target)
	add(grid.StatusHandling, g.addWorking(t, time.Duration((0.1+0.35*rng.Float64())*float64(wt))), g.staff(dept), oneOf(rng, demoHandlingNotes), "")
	if floor := g.addWorking(t, g.uniformDur(5*time.Minute, 20*time.Minute)); target.Before(floor) {
		target = floor
	}
	add(grid.StatusHandled, target, g.staff(dept), g.handledNote(e.class.Code), "")
	for round := 0; ; round++ {
		verifyAt := g.addWorking(t, g.uniformDur(20*time.Minute, 5*time.Hour))
		if p := []float64{0.05, 0.02, 0}[min(round, 2)]; rng.Float64() < p {
			add(grid.StatusReturned, verifyAt, g.verifier(e.ne.Location.Grid.Code), oneOf(rng, demoReturnNotes), "")
			add(grid.StatusDispatched, g.addWorking(t, g.uniformDur(time.Hour, 6*time.Hour)), g.clerk(), "重新派遣至"+g.deptName(dept), dept)
			add(grid.StatusHandling, g.addWorking(t, g.uniformDur(10*time.Minute, 2*time.Hour)), g.staff(dept), oneOf(rng, demoHandlingNotes), "")
			add(grid.StatusHandled, g.addWorking(t, g.uniformDur(30*time.Minute, 4*time.Hour)), g.staff(dept), g.handledNote(e.class.Code), "")
			continue
		}
		add(grid.StatusVerified, verifyAt, g.verifier(e.ne.Location.Grid.Code), oneOf(rng, demoVerifyNotes), "")
		break
	}
	add(grid.StatusClosed, g.addWorking(t, g.uniformDur(5*time.Minute, 2*time.Hour)), g.clerk(), "核查通过，结案", "")
}
